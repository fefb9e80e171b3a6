package bbolt

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/btree"
	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
	"github.com/meridian-ops/meridian/store/tle"
	bolt "go.etcd.io/bbolt"
)

// Workload (storage guide): 100,000 TLE-sized records, NORAD ids
// 0..99,999 as 4-byte big-endian keys (bbolt) / uint32 (ours), 82-byte
// values; random inserts committed (bbolt) or written back (ours) every
// 1,000 records without fsync; point gets of present keys; the range scan
// [40000, 40500]; a sorted bulk load.
const (
	n        = 100000
	batch    = 1000
	frames   = 4096 // our pool: 16 MiB, holds the whole tree like bbolt's mmap
	scanLo   = 40000
	scanHi   = 40500
	scanRows = scanHi - scanLo + 1
)

var bucket = []byte("tle")

func perm() []uint32 {
	p := rand.New(rand.NewPCG(42, 42)).Perm(n)
	out := make([]uint32, n)
	for i, v := range p {
		out[i] = uint32(v)
	}
	return out
}

func values() [][]byte {
	vals := make([][]byte, n)
	for i := range vals {
		r := tle.Record{NoradID: uint32(i), Epoch: 26001.5, MeanMotion: 15.5, Inclination: 53,
			ElementSet: uint16(i % 999), RevNumber: uint32(i) * 7}
		r.SetDesignator("26001A")
		vals[i], _ = r.MarshalBinary()
	}
	return vals
}

func key(id uint32) []byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], id)
	return k[:]
}

// --- bbolt ---

func openBolt(b *testing.B) *bolt.DB {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func boltLoad(b *testing.B, db *bolt.DB, keys []uint32, vals [][]byte, fill float64) {
	for i := 0; i < len(keys); i += batch {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			bk.FillPercent = fill
			for _, k := range keys[i:min(i+batch, len(keys))] {
				if err := bk.Put(key(k), vals[k]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func boltFill(b *testing.B, db *bolt.DB) float64 {
	var f float64
	_ = db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket(bucket).Stats()
		f = float64(s.LeafInuse) / float64(s.LeafAlloc)
		return nil
	})
	return f
}

// --- ours ---

func openOOR(b *testing.B) *btree.Tree {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "tree.oor"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pg.Close() })
	tr, err := btree.Open(context.Background(), bufpool.New(pg, bufpool.Config{Frames: frames}), btree.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

func oorLoad(b *testing.B, tr *btree.Tree, keys []uint32, vals [][]byte) {
	ctx := context.Background()
	for i, k := range keys {
		if err := tr.Put(ctx, k, vals[k]); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 || i == len(keys)-1 {
			if err := tr.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkInsertRandom(b *testing.B) {
	keys, vals := perm(), values()
	b.Run("engine=bbolt", func(b *testing.B) {
		b.ReportAllocs()
		var fill float64
		for b.Loop() {
			b.StopTimer()
			db := openBolt(b)
			b.StartTimer()
			boltLoad(b, db, keys, vals, bolt.DefaultFillPercent)
			fill = boltFill(b, db)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(100*fill, "%fill")
	})
	b.Run("engine=oor", func(b *testing.B) {
		b.ReportAllocs()
		var fill float64
		for b.Loop() {
			b.StopTimer()
			tr := openOOR(b)
			b.StartTimer()
			oorLoad(b, tr, keys, vals)
			fill = tr.Stats().FillFactor
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(100*fill, "%fill")
	})
}

func BenchmarkBulkLoad(b *testing.B) {
	vals := values()
	sorted := make([]uint32, n)
	for i := range sorted {
		sorted[i] = uint32(i)
	}
	b.Run("engine=bbolt", func(b *testing.B) {
		b.ReportAllocs()
		var fill float64
		for b.Loop() {
			b.StopTimer()
			db := openBolt(b)
			b.StartTimer()
			boltLoad(b, db, sorted, vals, 1.0)
			fill = boltFill(b, db)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(100*fill, "%fill")
	})
	b.Run("engine=oor", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		var fill float64
		for b.Loop() {
			b.StopTimer()
			tr := openOOR(b)
			b.StartTimer()
			err := tr.BulkLoad(ctx, func(yield func(uint32, []byte) bool) {
				for _, k := range sorted {
					if !yield(k, vals[k]) {
						return
					}
				}
			})
			if err == nil {
				err = tr.Flush(ctx)
			}
			if err != nil {
				b.Fatal(err)
			}
			fill = tr.Stats().FillFactor
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(100*fill, "%fill")
	})
}

// BenchmarkGet: a present key per op. bbolt pays for a read transaction per
// get (engine=bbolt) — what a caller doing one lookup pays; engine=bbolt-tx
// reuses one read transaction for all gets (pure lookup cost). Ours takes
// the tree's read lock per get and copies the value out.
func BenchmarkGet(b *testing.B) {
	keys, vals := perm(), values()
	b.Run("engine=bbolt", func(b *testing.B) {
		db := openBolt(b)
		boltLoad(b, db, keys, vals, bolt.DefaultFillPercent)
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			err := db.View(func(tx *bolt.Tx) error {
				v := tx.Bucket(bucket).Get(key(keys[i%n]))
				if v == nil {
					b.Fatal("missing")
				}
				buf = append(buf[:0], v...)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("engine=bbolt-tx", func(b *testing.B) {
		db := openBolt(b)
		boltLoad(b, db, keys, vals, bolt.DefaultFillPercent)
		tx, err := db.Begin(false)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		bk := tx.Bucket(bucket)
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			v := bk.Get(key(keys[i%n]))
			if v == nil {
				b.Fatal("missing")
			}
			buf = append(buf[:0], v...)
			i++
		}
	})
	b.Run("engine=oor", func(b *testing.B) {
		ctx := context.Background()
		tr := openOOR(b)
		oorLoad(b, tr, keys, vals)
		buf := make([]byte, 0, 128)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var ok bool
			var err error
			buf, ok, err = tr.Get(ctx, keys[i%n], buf[:0])
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			i++
		}
	})
}

// BenchmarkScan: the range [40000, 40500] (501 rows) per op; ns/row is the
// figure to compare.
func BenchmarkScan(b *testing.B) {
	keys, vals := perm(), values()
	b.Run("engine=bbolt", func(b *testing.B) {
		db := openBolt(b)
		boltLoad(b, db, keys, vals, bolt.DefaultFillPercent)
		hi := key(scanHi)
		var sink byte
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			err := db.View(func(tx *bolt.Tx) error {
				c := tx.Bucket(bucket).Cursor()
				for k, v := c.Seek(key(scanLo)); k != nil && string(k) <= string(hi); k, v = c.Next() {
					sink ^= v[0]
					rows++
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if rows != scanRows*b.N {
			b.Fatalf("%d rows", rows)
		}
		_ = sink
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	})
	b.Run("engine=oor", func(b *testing.B) {
		ctx := context.Background()
		tr := openOOR(b)
		oorLoad(b, tr, keys, vals)
		var sink byte
		rows := 0
		b.ReportAllocs()
		for b.Loop() {
			err := tr.Scan(ctx, scanLo, scanHi, func(k uint32, v []byte) bool {
				sink ^= v[0]
				rows++
				return true
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if rows != scanRows*b.N {
			b.Fatalf("%d rows", rows)
		}
		_ = sink
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	})
}
