package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/query"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/store/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	db, err := mvcc.Open(context.Background(), t.TempDir(), &mvcc.Options{LSM: lsm.Options{Sync: wal.SyncNone}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := catalog.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rec(id uint32, epoch float64, mm float64) tle.Record {
	r := tle.Record{NoradID: id, Epoch: epoch, MeanMotion: mm, Inclination: 51.6, ElementSet: 999, RevNumber: id}
	r.SetDesignator("98067A")
	return r
}

// The resolved entry equals what the query layer's k-way merge (and the
// nested-loop reference) computes from every provider's records, through
// random updates, epoch regressions of the winner, priority ties and
// redeliveries.
func TestResolvedMatchesMerge(t *testing.T) {
	ctx := context.Background()
	c := openCatalog(t)
	rng := rand.New(rand.NewPCG(1, 2))
	srcs := c.Sources()
	epochs := []float64{99365.5, 1.25, 20177.5, 20177.5, 24001.75, 24100.0}
	var last []catalog.Update
	for batch := 0; batch < 60; batch++ {
		var ups []catalog.Update
		if batch%7 == 6 {
			ups = last // a redelivered batch changes nothing
		} else {
			seen := map[string]bool{} // one update per (source, object) per batch
			for i := 0; i < 40; i++ {
				id := uint32(1 + rng.IntN(200))
				src := srcs[rng.IntN(len(srcs))].Name
				if k := fmt.Sprint(src, id); seen[k] {
					continue
				} else {
					seen[k] = true
				}
				ups = append(ups, catalog.Update{
					Source: src,
					Rec:    rec(id, epochs[rng.IntN(len(epochs))], float64(batch)+float64(i)/100),
				})
			}
		}
		res, err := c.Apply(ctx, ups)
		if err != nil {
			t.Fatal(err)
		}
		if batch%7 == 6 && (res.Written != 0 || res.CommitTS != 0) {
			t.Fatalf("redelivered batch wrote %d records at %d", res.Written, res.CommitTS)
		}
		last = ups
	}
	snap, err := c.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	m, err := snap.Merge(ctx, 10, true)
	if err != nil {
		t.Fatal(err)
	}
	qs := make([]query.Source, len(srcs))
	for i, s := range srcs {
		if qs[i], err = snap.Source(s.Name); err != nil {
			t.Fatal(err)
		}
	}
	ref, _, err := query.NestedLoopMerge(ctx, qs...)
	if err != nil {
		t.Fatal(err)
	}
	var resolved []catalog.Entry
	if _, err := snap.Scan(ctx, 0, math.MaxUint32, 0, func(e *catalog.Entry) bool { resolved = append(resolved, *e); return true }); err != nil {
		t.Fatal(err)
	}
	if len(resolved) != len(m.Winners) || len(ref) != len(m.Winners) || m.Stats.Conflicts == 0 {
		t.Fatalf("resolved %d, merge %d, nested loop %d objects, %d conflicts", len(resolved), len(m.Winners), len(ref), m.Stats.Conflicts)
	}
	for i, w := range m.Winners {
		e := resolved[i]
		if e.Rec != w.Rec || e.Source != c.SourceName(w.Source) || ref[i].Rec != w.Rec || ref[i].Source != w.Source {
			t.Fatalf("object %d: resolved %s %+v, merge %s %+v, nested loop %d", w.NoradID, e.Source, e.Rec, c.SourceName(w.Source), w.Rec, ref[i].Source)
		}
		got, err := snap.Get(ctx, w.NoradID)
		if err != nil || got.Rec != w.Rec {
			t.Fatalf("get %d = %+v, %v", w.NoradID, got, err)
		}
	}
	if _, err := snap.Get(ctx, 100_000); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown object: err = %v", err)
	}
}

func TestApplyRefusesBadUpdates(t *testing.T) {
	c := openCatalog(t)
	_, err := c.Apply(context.Background(), []catalog.Update{{Source: "18th-sds", Rec: rec(1, 20001, 1)}, {Source: "nope", Rec: rec(2, 20001, 1)}})
	if !errors.Is(err, catalog.ErrUnknownSource) {
		t.Fatalf("err = %v", err)
	}
	snap, _ := c.Snapshot(context.Background(), 0)
	defer snap.Close()
	if n, _ := snap.Count(context.Background()); n != 0 {
		t.Fatalf("a refused batch wrote %d objects", n)
	}
}

// MVCC course criterion 7: a conjunction query over 100 objects of a
// 10,000-object catalog sees only the pre-update versions while 50 of them
// are updated concurrently.
func TestCourseConjunctionSnapshot(t *testing.T) {
	ctx := context.Background()
	c := openCatalog(t)
	var ups []catalog.Update
	for id := uint32(1); id <= 10_000; id++ {
		ups = append(ups, catalog.Update{Source: "18th-sds", Rec: rec(id, 24001.5, 15.0)})
	}
	if _, err := c.Apply(ctx, ups); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()

	objects := make([]uint32, 100)
	for i := range objects {
		objects[i] = uint32(5000 + i*3)
	}
	var wg sync.WaitGroup
	var werr error
	updated := make(chan struct{})
	wg.Add(1)
	go func() { // 50 of the 100 get a newer element set, one commit each
		defer wg.Done()
		defer close(updated)
		for _, id := range objects[:50] {
			if _, werr = c.Apply(ctx, []catalog.Update{{Source: "leolabs", Rec: rec(id, 24002.5, 16.0)}}); werr != nil {
				return
			}
		}
	}()
	read := func() (old int) {
		for _, id := range objects {
			e, err := snap.Get(ctx, id)
			if err != nil {
				t.Fatalf("object %d: %v", id, err)
			}
			if e.Rec.MeanMotion != 15.0 || e.Source != "18th-sds" {
				t.Fatalf("object %d: the snapshot saw an update: %+v from %s", id, e.Rec, e.Source)
			}
			old++
		}
		return old
	}
	passes := 0
	for done := false; !done; passes++ {
		select {
		case <-updated:
			done = true
		default:
		}
		if read() != 100 {
			t.Fatal("short read")
		}
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	after, err := c.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	newer := 0
	for _, id := range objects {
		e, err := after.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Rec.MeanMotion == 16.0 && e.Source == "leolabs" {
			newer++
		}
	}
	if newer != 50 {
		t.Fatalf("a snapshot after the updates sees %d updated objects, want 50", newer)
	}
	t.Logf("%d passes over 100 objects at the old snapshot while 50 were updated", passes)
}

func TestScanPagesAndNames(t *testing.T) {
	ctx := context.Background()
	c := openCatalog(t)
	var ups []catalog.Update
	for id := uint32(10); id < 60; id++ {
		ups = append(ups, catalog.Update{Source: "esa-sst", Rec: rec(id, 24001, 1), Name: fmt.Sprint("SAT ", id)})
	}
	if _, err := c.Apply(ctx, ups); err != nil {
		t.Fatal(err)
	}
	snap, _ := c.Snapshot(ctx, 0)
	defer snap.Close()
	var ids []uint32
	more, err := snap.Scan(ctx, 20, 40, 15, func(e *catalog.Entry) bool { ids = append(ids, e.Rec.NoradID); return true })
	if err != nil || !more || len(ids) != 15 || ids[0] != 20 || ids[14] != 34 {
		t.Fatalf("scan = %v more=%v err=%v", ids, more, err)
	}
	e, err := snap.Get(ctx, 42)
	if err != nil || e.Name != "SAT 42" || e.Source != "esa-sst" || e.CommitTS == 0 {
		t.Fatalf("get = %+v, %v", e, err)
	}
}
