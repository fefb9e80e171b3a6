package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/store/wal"
)

var ctx = context.Background()

// Workload: 100,000 TLE records (4-byte big-endian NORAD id -> 82-byte
// record), ids 1..100000 in random order (same generator as store/lsm).
const n = 100000

var keys, vals = records()

func records() (ks, vs [][]byte) {
	r := rand.New(rand.NewPCG(2026, 11))
	for _, p := range r.Perm(n) {
		id := uint32(p + 1)
		rec := tle.Record{NoradID: id, Epoch: 24001.5 + r.Float64(), MeanMotion: 15.5,
			Eccentricity: r.Float64() / 10, Inclination: 51.6, ElementSet: 999, RevNumber: id}
		rec.SetDesignator("98067A")
		v, _ := rec.MarshalBinary()
		ks = append(ks, binary.BigEndian.AppendUint32(nil, id))
		vs = append(vs, v)
	}
	return ks, vs
}

// absentKeys sort between present ids (5 bytes: id + 0x80), so only bloom
// filters can rule them out.
func absentKeys() [][]byte {
	var out [][]byte
	for i := uint32(0); i < 1000; i++ {
		out = append(out, append(binary.BigEndian.AppendUint32(nil, 1+i*97), 0x80))
	}
	return out
}

// engine is the little both stores must do for the workload.
type engine interface {
	put(k, v []byte) error       // no fsync
	batch(ks, vs [][]byte) error // one batch, fsynced
	get(k []byte) (bool, error)  // found?
	scan(lo, hi []byte) (int, error)
	compact() error
	close() error
}

type pebbleEngine struct{ db *pebble.DB }

// quiet drops pebble's informational logging (WAL replay lines).
type quiet struct{}

func (quiet) Infof(string, ...interface{}) {}
func (quiet) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

func pebbleOptions(memtable uint64) *pebble.Options {
	o := &pebble.Options{Logger: quiet{}}
	if memtable > 0 {
		o.MemTableSize = memtable
	}
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

func openPebble(dir string, memtable uint64) (engine, error) {
	db, err := pebble.Open(dir, pebbleOptions(memtable))
	return &pebbleEngine{db}, err
}

func (e *pebbleEngine) put(k, v []byte) error { return e.db.Set(k, v, pebble.NoSync) }
func (e *pebbleEngine) batch(ks, vs [][]byte) error {
	b := e.db.NewBatch()
	for i := range ks {
		b.Set(ks[i], vs[i], nil)
	}
	return b.Commit(pebble.Sync)
}
func (e *pebbleEngine) get(k []byte) (bool, error) {
	_, c, err := e.db.Get(k)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, c.Close()
}
func (e *pebbleEngine) scan(lo, hi []byte) (int, error) {
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	c := 0
	for it.First(); it.Valid(); it.Next() {
		_ = it.Value()
		c++
	}
	return c, it.Close()
}
func (e *pebbleEngine) compact() error {
	if err := e.db.Flush(); err != nil {
		return err
	}
	return e.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff}, true)
}
func (e *pebbleEngine) close() error { return e.db.Close() }

type oorEngine struct{ db *lsm.DB }

func openOOR(dir string, memtable int64, sync wal.SyncPolicy) (engine, error) {
	db, err := lsm.Open(ctx, dir, &lsm.Options{MemtableSize: memtable, Sync: sync})
	return &oorEngine{db}, err
}

func (e *oorEngine) put(k, v []byte) error { return e.db.Put(ctx, k, v) }
func (e *oorEngine) batch(ks, vs [][]byte) error {
	var b lsm.Batch
	for i := range ks {
		b.Put(ks[i], vs[i])
	}
	_, err := e.db.Apply(ctx, &b) // SyncAlways: fsynced before return
	return err
}
func (e *oorEngine) get(k []byte) (bool, error) {
	_, err := e.db.Get(ctx, k)
	if err == lsm.ErrNotFound {
		return false, nil
	}
	return err == nil, err
}
func (e *oorEngine) scan(lo, hi []byte) (int, error) {
	c := 0
	err := e.db.Scan(ctx, lo, hi, func(k, v []byte) error { c++; return nil })
	return c, err
}
func (e *oorEngine) compact() error { return e.db.Compact(ctx) }
func (e *oorEngine) close() error   { return e.db.Close() }

type opener func(dir string, fsync bool) (engine, error)

var engines = []struct {
	name string
	open opener
}{
	{"pebble", func(dir string, fsync bool) (engine, error) { return openPebble(dir, 0) }},
	{"oor", func(dir string, fsync bool) (engine, error) {
		p := wal.SyncNone
		if fsync {
			p = wal.SyncAlways
		}
		return openOOR(dir, 0, p)
	}},
}

func BenchmarkInsert(b *testing.B) {
	for _, mode := range []string{"fsync=off", "fsync=per1000"} {
		for _, e := range engines {
			b.Run(fmt.Sprintf("%s/engine=%s", mode, e.name), func(b *testing.B) {
				b.ReportAllocs()
				var total time.Duration
				for b.Loop() {
					dir := b.TempDir()
					db, err := e.open(dir, mode != "fsync=off")
					if err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					if mode == "fsync=off" {
						for i := range keys {
							if err := db.put(keys[i], vals[i]); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						for i := 0; i < n; i += 1000 {
							if err := db.batch(keys[i:i+1000], vals[i:i+1000]); err != nil {
								b.Fatal(err)
							}
						}
					}
					total += time.Since(t0)
					db.close()
				}
				b.ReportMetric(float64(n*b.N)/total.Seconds(), "records/s")
			})
		}
	}
}

func loaded(b *testing.B, open opener) engine {
	db, err := open(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		if err := db.batch(keys[i:i+1000], vals[i:i+1000]); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.compact(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.close() })
	return db
}

func BenchmarkGet(b *testing.B) {
	absent := absentKeys()
	for _, e := range engines {
		db := loaded(b, e.open)
		b.Run("present/engine="+e.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if ok, err := db.get(keys[i%1000]); !ok || err != nil {
					b.Fatal("present key missing", err)
				}
			}
		})
		b.Run("absent/engine="+e.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if ok, err := db.get(absent[i%1000]); ok || err != nil {
					b.Fatal("absent key found", err)
				}
			}
		})
	}
}

func BenchmarkScan(b *testing.B) {
	lo, hi := binary.BigEndian.AppendUint32(nil, 40000), binary.BigEndian.AppendUint32(nil, 40501)
	for _, e := range engines {
		db := loaded(b, e.open)
		b.Run("engine="+e.name, func(b *testing.B) {
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				c, err := db.scan(lo, hi)
				if err != nil || c != 501 {
					b.Fatalf("scan: %d rows, %v", c, err)
				}
				rows += c
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
		})
	}
}

// BenchmarkRecovery reopens a DB whose records are only in the WAL. Each
// iteration reopens a fresh copy of the same directory (the copy is not
// timed), because an engine may flush what it replayed.
func BenchmarkRecovery(b *testing.B) {
	for _, cnt := range []int{10000, 50000, 100000} {
		for _, e := range []struct {
			name string
			open func(dir string) (engine, error)
		}{
			{"pebble", func(dir string) (engine, error) { return openPebble(dir, 256<<20) }},
			{"oor", func(dir string) (engine, error) { return openOOR(dir, 256<<20, wal.SyncNone) }},
		} {
			b.Run(fmt.Sprintf("records=%d/engine=%s", cnt, e.name), func(b *testing.B) {
				src := b.TempDir()
				db, err := e.open(src)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < cnt; i++ {
					db.put(keys[i], vals[i])
				}
				db.close()
				b.ReportAllocs()
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					dir := filepath.Join(b.TempDir(), "db")
					copyDir(b, src, dir)
					b.StartTimer()
					t0 := time.Now()
					db, err := e.open(dir)
					if err != nil {
						b.Fatal(err)
					}
					total += time.Since(t0)
					if ok, _ := db.get(keys[cnt-1]); !ok {
						b.Fatal("last record not recovered")
					}
					db.close()
				}
				b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/open")
			})
		}
	}
}

func copyDir(b *testing.B, src, dst string) {
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
