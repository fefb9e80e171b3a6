package demo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/meridian-ops/meridian/store/btree"
	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/slotted"
)

// BTree runs the "B+ Tree TLE Index Engine" acceptance criteria against
// store/btree, first with a 1,024-frame pool and then with only 16 frames:
// 10,000 random ids indexed by record id, the range [5000, 5100], leaf
// splits, bulk load of 100,000 sorted records against one-by-one insertion,
// and 1,000 deletes, printing tree height, leaf count, fill factor and pool
// statistics after each phase.
func BTree(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "meridian-btree-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, frames := range []int{1024, 16} {
		fmt.Fprintf(w, "== buffer pool of %d frames\n", frames)
		if err := btreePhases(ctx, w, filepath.Join(dir, fmt.Sprint(frames)), frames); err != nil {
			return fmt.Errorf("%d frames: %w", frames, err)
		}
	}
	return nil
}

type demoTree struct {
	tree *btree.Tree
	pool *bufpool.Pool
}

func openDemoTree(ctx context.Context, path string, frames, vsize int) (*demoTree, func(), error) {
	pg, _, err := openPager(path)
	if err != nil {
		return nil, nil, err
	}
	pool := bufpool.New(pg, bufpool.Config{Frames: frames})
	tr, err := btree.Open(ctx, pool, btree.Options{ValueSize: vsize})
	if err != nil {
		_ = pg.Close()
		return nil, nil, err
	}
	return &demoTree{tr, pool}, func() { _ = pg.Close() }, nil
}

func (d *demoTree) report(w io.Writer, phase string) {
	fmt.Fprintf(w, "   %-12s tree: %v\n   %-12s pool: %v\n", phase, d.tree.Stats(), "", d.pool.Stats())
}

func btreePhases(ctx context.Context, w io.Writer, dir string, frames int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// 1. 10,000 random ids: records in a slotted heap, RIDs in the tree.
	idx, closeIdx, err := openDemoTree(ctx, filepath.Join(dir, "index.oor"), frames, 6)
	if err != nil {
		return err
	}
	defer closeIdx()
	hpg, _, err := openPager(filepath.Join(dir, "heap.oor"))
	if err != nil {
		return err
	}
	defer hpg.Close()
	heap, err := slotted.OpenHeap(ctx, bufpool.New(hpg, bufpool.Config{Frames: frames}))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	rids := map[uint32]slotted.RID{}
	for len(rids) < 10000 {
		id := rng.Uint32N(1 << 20)
		if _, dup := rids[id]; dup {
			continue
		}
		rid, err := heap.Insert(ctx, demoRecord(id))
		if err != nil {
			return err
		}
		if err := idx.tree.Put(ctx, id, ridBytes(rid)); err != nil {
			return err
		}
		rids[id] = rid
	}
	idx.pool.ResetStats()
	var buf []byte
	for id, rid := range rids {
		var ok bool
		if buf, ok, err = idx.tree.Get(ctx, id, buf[:0]); err != nil || !ok || !bytes.Equal(buf, ridBytes(rid)) {
			return fmt.Errorf("criterion 1: id %d: found=%v err=%v", id, ok, err)
		}
	}
	if err := idx.tree.Check(ctx); err != nil {
		return fmt.Errorf("criterion 1: %w", err)
	}
	fmt.Fprintf(w, "1 point lookup: 10,000 random ids inserted and found with matching record ids\n")
	idx.report(w, "lookup")

	// 2. Ids 1..10,000, range [5000, 5100].
	rs, closeRS, err := openDemoTree(ctx, filepath.Join(dir, "range.oor"), frames, 0)
	if err != nil {
		return err
	}
	defer closeRS()
	for _, i := range rng.Perm(10000) {
		if err := rs.tree.Put(ctx, uint32(i+1), demoRecord(uint32(i+1))); err != nil {
			return err
		}
	}
	var got []uint32
	if err := rs.tree.Scan(ctx, 5000, 5100, func(k uint32, _ []byte) bool { got = append(got, k); return true }); err != nil {
		return err
	}
	sorted := true
	for i := 1; i < len(got); i++ {
		sorted = sorted && got[i-1] < got[i]
	}
	fmt.Fprintf(w, "2 range scan: [5000, 5100] returned %d records, sorted=%v\n", len(got), sorted)
	rs.report(w, "range")
	if len(got) != 101 || !sorted || got[0] != 5000 {
		return fmt.Errorf("criterion 2: %d records, sorted=%v", len(got), sorted)
	}

	// 3. Splits: insert until at least 3 leaf splits.
	sp, closeSp, err := openDemoTree(ctx, filepath.Join(dir, "splits.oor"), frames, 0)
	if err != nil {
		return err
	}
	defer closeSp()
	var ids []uint32
	for sp.tree.Stats().Leaves < 4 {
		id := rng.Uint32()
		if err := sp.tree.Put(ctx, id, demoRecord(id)); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := sp.tree.Check(ctx); err != nil {
		return fmt.Errorf("criterion 3: %w", err)
	}
	for _, id := range ids {
		if _, ok, err := sp.tree.Get(ctx, id, nil); err != nil || !ok {
			return fmt.Errorf("criterion 3: id %d lost after splits", id)
		}
	}
	fmt.Fprintf(w, "3 splits: %d records, %d leaf splits, Check passed (all leaves at depth %d)\n",
		len(ids), sp.tree.Stats().Leaves-1, sp.tree.Stats().Height)
	sp.report(w, "splits")

	// 4. Bulk load 100,000 sorted vs one by one.
	bl, closeBL, err := openDemoTree(ctx, filepath.Join(dir, "bulk.oor"), frames, 0)
	if err != nil {
		return err
	}
	defer closeBL()
	const n = 100000
	if err := bl.tree.BulkLoad(ctx, func(yield func(uint32, []byte) bool) {
		for i := uint32(1); i <= n; i++ {
			if !yield(i, demoRecord(i)) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if err := bl.tree.Check(ctx); err != nil {
		return fmt.Errorf("criterion 4: %w", err)
	}
	bl.report(w, "bulk load")
	ob, closeOB, err := openDemoTree(ctx, filepath.Join(dir, "onebyone.oor"), frames, 0)
	if err != nil {
		return err
	}
	defer closeOB()
	for i := uint32(1); i <= n; i++ {
		if err := ob.tree.Put(ctx, i, demoRecord(i)); err != nil {
			return err
		}
	}
	ob.report(w, "one-by-one")
	bs, os1 := bl.tree.Stats(), ob.tree.Stats()
	fmt.Fprintf(w, "4 bulk load: %d leaves at %.2f%% fill vs %d leaves at %.2f%% inserting one by one\n",
		bs.Leaves, 100*bs.FillFactor, os1.Leaves, 100*os1.FillFactor)
	if bs.FillFactor <= 0.95 || bs.Count != n {
		return fmt.Errorf("criterion 4: bulk fill %.2f%%", 100*bs.FillFactor)
	}

	// 5. Delete 1,000 of the range tree's ids.
	deleted := map[uint32]bool{}
	for _, i := range rng.Perm(10000)[:1000] {
		ok, err := rs.tree.Delete(ctx, uint32(i+1))
		if err != nil || !ok {
			return fmt.Errorf("criterion 5: delete %d: %v %v", i+1, ok, err)
		}
		deleted[uint32(i+1)] = true
	}
	for id := uint32(1); id <= 10000; id++ {
		v, ok, err := rs.tree.Get(ctx, id, nil)
		if err != nil || ok == deleted[id] || (ok && !bytes.Equal(v, demoRecord(id))) {
			return fmt.Errorf("criterion 5: id %d (deleted=%v) found=%v err=%v", id, deleted[id], ok, err)
		}
	}
	if err := rs.tree.Check(ctx); err != nil {
		return fmt.Errorf("criterion 5: %w", err)
	}
	fmt.Fprintf(w, "5 delete: 1,000 ids deleted and gone, 9,000 unaffected\n")
	rs.report(w, "delete")
	return nil
}

func ridBytes(r slotted.RID) []byte {
	var b [6]byte
	binary.LittleEndian.PutUint32(b[:], r.Page)
	binary.LittleEndian.PutUint16(b[4:], r.Slot)
	return b[:]
}
