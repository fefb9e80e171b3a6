package btree

import (
	"context"
	"math/rand/v2"
	"testing"
)

// The workload of ops/perf/oor-btree.md: 100,000 TLE-sized records, NORAD
// ids 0..99,999, 82-byte values. The pool holds the whole tree (like bbolt's
// mmap), so these measure the tree, not the disk.
const (
	benchN      = 100000
	benchFrames = 4096 // 16 MiB
	batch       = 1000 // pages written back every batch, like one bbolt tx
)

func benchPerm() []uint32 {
	p := rand.New(rand.NewPCG(42, 42)).Perm(benchN)
	out := make([]uint32, benchN)
	for i, v := range p {
		out[i] = uint32(v)
	}
	return out
}

func benchValues() [][]byte {
	vals := make([][]byte, benchN)
	for i := range vals {
		vals[i] = tleValue(uint32(i))
	}
	return vals
}

func loadRandom(b *testing.B, e *env, perm []uint32, vals [][]byte) {
	ctx := context.Background()
	for i, k := range perm {
		if err := e.tree.Put(ctx, k, vals[k]); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 {
			if err := e.tree.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := e.tree.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInsertRandom: one op is 100,000 inserts in random order into a
// fresh tree, writing dirty pages back (no fsync) every 1,000.
func BenchmarkInsertRandom(b *testing.B) {
	perm, vals := benchPerm(), benchValues()
	b.ReportAllocs()
	var fill float64
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, benchFrames, Options{})
		b.StartTimer()
		loadRandom(b, e, perm, vals)
		fill = e.tree.Stats().FillFactor
	}
	b.ReportMetric(float64(b.N*benchN)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(100*fill, "%fill")
}

// BenchmarkBulkLoad: one op loads 100,000 sorted records into a fresh tree
// and writes every page back.
func BenchmarkBulkLoad(b *testing.B) {
	ctx := context.Background()
	vals := benchValues()
	b.ReportAllocs()
	var fill float64
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, benchFrames, Options{})
		b.StartTimer()
		err := e.tree.BulkLoad(ctx, func(yield func(uint32, []byte) bool) {
			for i := range uint32(benchN) {
				if !yield(i, vals[i]) {
					return
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.tree.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		fill = e.tree.Stats().FillFactor
	}
	b.ReportMetric(float64(b.N*benchN)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(100*fill, "%fill")
}

func randomTree(b *testing.B) *env {
	e := newEnv(b, benchFrames, Options{})
	loadRandom(b, e, benchPerm(), benchValues())
	return e
}

// BenchmarkGet: point lookup of a present key, value copied out.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	e := randomTree(b)
	perm := benchPerm()
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ok bool
		var err error
		buf, ok, err = e.tree.Get(ctx, perm[i%benchN], buf[:0])
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkScan: range [40000, 40500], 501 rows; ns/row is the figure to
// compare.
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	e := randomTree(b)
	b.ReportAllocs()
	rows := 0
	var sink byte
	for b.Loop() {
		err := e.tree.Scan(ctx, 40000, 40500, func(k uint32, v []byte) bool {
			sink ^= v[0]
			rows++
			return true
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	_ = sink
	if rows != 501*b.N {
		b.Fatalf("%d rows in %d scans", rows, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}
