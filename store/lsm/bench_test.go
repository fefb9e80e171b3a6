package lsm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/store/wal"
)

// The workload of ops/perf/oor-lsm.md: 100,000 TLE records (4-byte
// big-endian NORAD id -> 82-byte record), ids 1..100000 in random order.
const benchN = 100000

func benchRecords() (keys [][]byte, vals [][]byte) {
	r := rand.New(rand.NewPCG(2026, 11))
	perm := r.Perm(benchN)
	for _, p := range perm {
		id := uint32(p + 1)
		keys = append(keys, binary.BigEndian.AppendUint32(nil, id))
		vals = append(vals, tleValue(id, r))
	}
	return keys, vals
}

func benchLoad(b *testing.B, dir string, o *Options, keys, vals [][]byte, batch int) *DB {
	db, err := Open(ctx, dir, o)
	if err != nil {
		b.Fatal(err)
	}
	if batch <= 1 {
		for i := range keys {
			if err := db.Put(ctx, keys[i], vals[i]); err != nil {
				b.Fatal(err)
			}
		}
		return db
	}
	var bt Batch
	for i := range keys {
		bt.Put(keys[i], vals[i])
		if bt.Len() == batch || i == len(keys)-1 {
			if _, err := db.Apply(ctx, &bt); err != nil {
				b.Fatal(err)
			}
			bt.Reset()
		}
	}
	return db
}

// BenchmarkInsert: 100,000 random-order TLE records into a fresh DB on
// disk: one Put per record without fsync, and batches of 1,000 with an
// fsync per batch.
func BenchmarkInsert(b *testing.B) {
	keys, vals := benchRecords()
	for _, c := range []struct {
		name  string
		sync  wal.SyncPolicy
		batch int
	}{{"fsync=off", wal.SyncNone, 1}, {"fsync=per1000", wal.SyncAlways, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var total time.Duration
			for b.Loop() {
				dir := b.TempDir()
				t0 := time.Now()
				db := benchLoad(b, dir, &Options{Sync: c.sync}, keys, vals, c.batch)
				total += time.Since(t0)
				db.Close()
			}
			b.ReportMetric(float64(benchN*b.N)/total.Seconds(), "records/s")
		})
	}
}

func benchDB(b *testing.B) (*DB, [][]byte) {
	keys, vals := benchRecords()
	db := benchLoad(b, b.TempDir(), &Options{Sync: wal.SyncNone}, keys, vals, 1000)
	if err := db.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, keys
}

// BenchmarkGet: point lookups after compaction, cycling over 1,000 present
// keys and 1,000 absent keys (ids above 100,000, between table bounds
// only for the last table; see BenchmarkGet/absent-inrange for gaps).
func BenchmarkGet(b *testing.B) {
	db, keys := benchDB(b)
	present := keys[:1000]
	var absent [][]byte
	for i := uint32(0); i < 1000; i++ {
		// Odd keys of 5 bytes sort between present 4-byte ids: inside every
		// table's range, so only the bloom filter can rule them out.
		absent = append(absent, binary.BigEndian.AppendUint32([]byte(nil), 1+i*97)[:4:4])
		absent[i] = append(absent[i], 0x80)
	}
	b.Run("present", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := db.Get(ctx, present[i%1000]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/get")
	})
	b.Run("absent", func(b *testing.B) {
		b.ReportAllocs()
		s0 := db.Stats()
		for i := 0; b.Loop(); i++ {
			if _, err := db.Get(ctx, absent[i%1000]); err == nil {
				b.Fatal("absent key found")
			}
		}
		s := db.Stats()
		b.ReportMetric(float64(s.BloomSkips-s0.BloomSkips)/float64(max(1, s.TableProbes-s0.TableProbes)), "bloom-skip-rate")
	})
}

// BenchmarkScan: the range [40000, 40500] (501 rows) after compaction.
func BenchmarkScan(b *testing.B) {
	db, _ := benchDB(b)
	lo, hi := binary.BigEndian.AppendUint32(nil, 40000), binary.BigEndian.AppendUint32(nil, 40501)
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		n := 0
		if err := db.Scan(ctx, lo, hi, func(k, v []byte) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != 501 {
			b.Fatalf("scan returned %d rows", n)
		}
		rows += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

// BenchmarkRecovery: Open of a DB whose 10k/50k/100k records are only in
// the WAL (memtable big enough that nothing was flushed).
func BenchmarkRecovery(b *testing.B) {
	keys, vals := benchRecords()
	for _, n := range []int{10000, 50000, 100000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			o := &Options{Sync: wal.SyncNone, MemtableSize: 256 << 20}
			db := benchLoad(b, dir, o, keys[:n], vals[:n], 1)
			db.Close()
			b.ReportAllocs()
			for b.Loop() {
				db, err := Open(ctx, dir, o)
				if err != nil {
					b.Fatal(err)
				}
				if got := db.Recovery().WALRecords; got != n {
					b.Fatalf("replayed %d", got)
				}
				db.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/recovery")
		})
	}
}
