package catalog_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// Workloads of ops/perf/oor-mvcc.md.

func benchCatalog(b *testing.B, sync wal.SyncPolicy) *catalog.Catalog {
	b.Helper()
	db, err := mvcc.Open(context.Background(), b.TempDir(), &mvcc.Options{LSM: lsm.Options{Sync: sync}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	c, err := catalog.New(db, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchLoad gives objects 1..n a record from each of the first `sources`
// providers (random epochs in one day, so the merge has conflicts to
// resolve), through Apply in batches of 1,000.
func benchLoad(b *testing.B, c *catalog.Catalog, n, sources int) {
	b.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(2026, 5))
	ups := make([]catalog.Update, 0, 1000)
	flush := func() {
		if _, err := c.Apply(ctx, ups); err != nil {
			b.Fatal(err)
		}
		ups = ups[:0]
	}
	for _, s := range c.Sources()[:sources] {
		for id := uint32(1); id <= uint32(n); id++ {
			ups = append(ups, catalog.Update{Source: s.Name, Rec: rec(id, 26001+r.Float64(), 11+4*r.Float64())})
			if len(ups) == cap(ups) {
				flush()
			}
		}
	}
	if len(ups) > 0 {
		flush()
	}
}

// BenchmarkConjunctionQuery100: the conjunction query's read shape on a
// 10,000-object catalog: open a snapshot, get 100 objects (ids 5000,
// 5003, ..., 5297: resolved entry and name each), close it. where=memtable
// is the catalog as loaded; where=sstable after compaction into L1.
func BenchmarkConjunctionQuery100(b *testing.B) {
	ctx := context.Background()
	ids := make([]uint32, 100)
	for i := range ids {
		ids[i] = uint32(5000 + 3*i)
	}
	for _, where := range []string{"memtable", "sstable"} {
		b.Run("where="+where, func(b *testing.B) {
			c := benchCatalog(b, wal.SyncNone)
			benchLoad(b, c, 10_000, 1)
			if where == "sstable" {
				if err := c.DB().LSM().Compact(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if st := c.DB().LSM().Stats(); (where == "memtable") != (st.TotalTables() == 0) {
				b.Fatalf("%s: %d SSTables", where, st.TotalTables())
			}
			b.ReportAllocs()
			for b.Loop() {
				snap, err := c.Snapshot(ctx, 0)
				if err != nil {
					b.Fatal(err)
				}
				for _, id := range ids {
					if e, err := snap.Get(ctx, id); err != nil || e.Rec.NoradID != id {
						b.Fatalf("get %d: %+v, %v", id, e, err)
					}
				}
				snap.Close()
			}
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// BenchmarkApply256: catalog.Apply of 256 updates (distinct objects of a
// 10,000-object catalog, newer epochs, providers in turn) as one
// transaction; sync=always is the store worker's setting (one fsync per
// batch), sync=none isolates the CPU cost.
func BenchmarkApply256(b *testing.B) {
	ctx := context.Background()
	for _, sync := range []struct {
		name   string
		policy wal.SyncPolicy
	}{{"always", wal.SyncAlways}, {"none", wal.SyncNone}} {
		b.Run("sync="+sync.name, func(b *testing.B) {
			c := benchCatalog(b, sync.policy)
			benchLoad(b, c, 10_000, 1)
			srcs := c.Sources()
			ups := make([]catalog.Update, 256)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range ups {
					id := uint32((i*256+j)%10_000 + 1)
					ups[j] = catalog.Update{Source: srcs[i%len(srcs)].Name, Rec: rec(id, 26002+float64(i)*1e-4, 15)}
				}
				res, err := c.Apply(ctx, ups)
				if err != nil || res.Written != len(ups) {
					b.Fatalf("apply: %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkMerge5x20k: Snapshot.Merge (the query layer's k-way merge with
// newest-epoch conflict resolution) over 5 providers × 20,000 objects
// stored in the catalog, compacted into L1.
func BenchmarkMerge5x20k(b *testing.B) {
	ctx := context.Background()
	c := benchCatalog(b, wal.SyncNone)
	benchLoad(b, c, 20_000, 5)
	if err := c.DB().LSM().Compact(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var rows int64
	for b.Loop() {
		snap, err := c.Snapshot(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		m, err := snap.Merge(ctx, 0, false)
		if err != nil {
			b.Fatal(err)
		}
		snap.Close()
		if m.RowsIn != 100_000 || m.Stats.Objects != 20_000 || m.Stats.Conflicts != 20_000 {
			b.Fatalf("merge read %d rows, %d objects, %d conflicts", m.RowsIn, m.Stats.Objects, m.Stats.Conflicts)
		}
		rows += m.RowsIn
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "records/s")
}
