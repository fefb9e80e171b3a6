package btree

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
	"github.com/meridian-ops/meridian/store/slotted"
	"github.com/meridian-ops/meridian/store/tle"
)

type env struct {
	tree  *Tree
	pool  *bufpool.Pool
	pager *pagefile.Pager
	path  string
}

func openEnv(t testing.TB, path string, frames int, opts Options) *env {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	pool := bufpool.New(pg, bufpool.Config{Frames: frames})
	tr, err := Open(context.Background(), pool, opts)
	if err != nil {
		_ = pg.Close()
		t.Fatal(err)
	}
	e := &env{tree: tr, pool: pool, pager: pg, path: path}
	t.Cleanup(func() { _ = pg.Close() })
	return e
}

func newEnv(t testing.TB, frames int, opts Options) *env {
	return openEnv(t, filepath.Join(t.TempDir(), "tree.oor"), frames, opts)
}

func mustCheck(t testing.TB, tr *Tree) {
	t.Helper()
	if err := tr.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// tleValue is the 82-byte record of a synthetic object with the given id.
func tleValue(id uint32) []byte {
	r := tle.Record{NoradID: id, Epoch: 26001.5, MeanMotion: 15.5, Inclination: 53,
		ElementSet: uint16(id % 999), RevNumber: id * 7}
	r.SetDesignator("26001A")
	b, _ := r.MarshalBinary()
	return b
}

func ridValue(r slotted.RID) []byte {
	var b [6]byte
	binary.LittleEndian.PutUint32(b[:], r.Page)
	binary.LittleEndian.PutUint16(b[4:], r.Slot)
	return b[:]
}

// The course's acceptance criteria 1-5, run with a roomy pool and again with
// 16 frames (criterion 6). Each phase logs the figures criterion 7 asks for.
func TestCapstone(t *testing.T) {
	for _, frames := range []int{16, 1024} {
		t.Run(fmt.Sprintf("frames=%d", frames), func(t *testing.T) {
			t.Run("PointLookup", func(t *testing.T) { testPointLookup(t, frames) })
			t.Run("RangeScan", func(t *testing.T) { testRangeScan(t, frames) })
			t.Run("Splits", func(t *testing.T) { testSplits(t, frames) })
			t.Run("BulkLoad", func(t *testing.T) { testBulkLoad(t, frames) })
			t.Run("Delete", func(t *testing.T) { testDelete(t, frames) })
		})
	}
}

func logPhase(t *testing.T, e *env) {
	t.Helper()
	t.Logf("tree: %v; pool: %v", e.tree.Stats(), e.pool.Stats())
}

// Criterion 1: 10,000 TLE records with random NORAD ids in a slotted heap,
// indexed by RID; every lookup returns the RID the heap handed out.
func testPointLookup(t *testing.T, frames int) {
	ctx := context.Background()
	dir := t.TempDir()
	e := openEnv(t, filepath.Join(dir, "index.oor"), frames, Options{ValueSize: 6})
	hf, _ := os.OpenFile(filepath.Join(dir, "heap.oor"), os.O_RDWR|os.O_CREATE, 0o644)
	hpg, _ := pagefile.Open(hf)
	defer hpg.Close()
	heapPool := bufpool.New(hpg, bufpool.Config{Frames: frames})
	heap, err := slotted.OpenHeap(ctx, heapPool)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 10000))
	want := map[uint32]slotted.RID{}
	for len(want) < 10000 {
		id := rng.Uint32N(1 << 20)
		if _, dup := want[id]; dup {
			continue
		}
		rid, err := heap.Insert(ctx, tleValue(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.tree.Put(ctx, id, ridValue(rid)); err != nil {
			t.Fatal(err)
		}
		want[id] = rid
	}
	mustCheck(t, e.tree)
	e.pool.ResetStats()
	var buf, rec []byte
	for id, rid := range want {
		var ok bool
		buf, ok, err = e.tree.Get(ctx, id, buf[:0])
		if err != nil || !ok || !bytes.Equal(buf, ridValue(rid)) {
			t.Fatalf("id %d: got % x ok=%v err=%v, want %v", id, buf, ok, err, rid)
		}
		rec, ok, err = heap.Get(ctx, rid, rec[:0])
		if err != nil || !ok || binary.LittleEndian.Uint32(rec) != id {
			t.Fatalf("heap record for %d at %v: ok=%v err=%v", id, rid, ok, err)
		}
	}
	if s := e.pool.Stats(); s.Hits+s.Misses != uint64(10000*e.tree.Stats().Height) {
		t.Fatalf("lookups read %d pages, want height × 10000 = %d", s.Hits+s.Misses, 10000*e.tree.Stats().Height)
	}
	logPhase(t, e)
}

// Criterion 2: ids 1..10,000, scan [5000, 5100] gives exactly 101 sorted.
func testRangeScan(t *testing.T, frames int) {
	ctx := context.Background()
	e := newEnv(t, frames, Options{})
	for _, id := range rand.New(rand.NewPCG(1, 1)).Perm(10000) {
		if err := e.tree.Put(ctx, uint32(id+1), tleValue(uint32(id+1))); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint32
	err := e.tree.Scan(ctx, 5000, 5100, func(k uint32, v []byte) bool {
		if !bytes.Equal(v, tleValue(k)) {
			t.Fatalf("value of %d", k)
		}
		got = append(got, k)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 101 || got[0] != 5000 || got[100] != 5100 || !slices.IsSorted(got) {
		t.Fatalf("scan returned %d keys: first %v last %v", len(got), got[:1], got[len(got)-1:])
	}
	mustCheck(t, e.tree)
	logPhase(t, e)
}

// Criterion 3: at least 3 leaf splits, balanced, every record retrievable.
func testSplits(t *testing.T, frames int) {
	ctx := context.Background()
	e := newEnv(t, frames, Options{})
	rng := rand.New(rand.NewPCG(3, 3))
	var ids []uint32
	for e.tree.Stats().Leaves < 4 {
		id := rng.Uint32()
		if err := e.tree.Put(ctx, id, tleValue(id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		mustCheck(t, e.tree) // after every insert: all leaves at one depth, chain intact
	}
	if s := e.tree.Stats(); s.Height != 2 {
		t.Fatalf("after 3 leaf splits: %v", s)
	}
	for _, id := range ids {
		if v, ok, err := e.tree.Get(ctx, id, nil); err != nil || !ok || !bytes.Equal(v, tleValue(id)) {
			t.Fatalf("id %d after splits: ok=%v err=%v", id, ok, err)
		}
	}
	logPhase(t, e)
}

// Criterion 4: bulk load 100,000 sorted records above 95% leaf fill (we
// require 99%), against one-by-one insertion of the same keys.
func testBulkLoad(t *testing.T, frames int) {
	ctx := context.Background()
	const n = 100000
	bulk := newEnv(t, frames, Options{})
	err := bulk.tree.BulkLoad(ctx, func(yield func(uint32, []byte) bool) {
		for i := uint32(1); i <= n; i++ {
			if !yield(i, tleValue(i)) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, bulk.tree)
	bs := bulk.tree.Stats()
	if bs.Count != n || bs.FillFactor < 0.99 || bs.Height != 3 {
		t.Fatalf("bulk: %v", bs)
	}
	logPhase(t, bulk)
	one := newEnv(t, frames, Options{})
	for i := uint32(1); i <= n; i++ {
		if err := one.tree.Put(ctx, i, tleValue(i)); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, one.tree)
	os := one.tree.Stats()
	if os.Count != n || os.Leaves <= bs.Leaves {
		t.Fatalf("one-by-one %v vs bulk %v", os, bs)
	}
	t.Logf("bulk %d leaves (%.1f%% fill) vs one-by-one %d leaves (%.1f%%)", bs.Leaves, 100*bs.FillFactor, os.Leaves, 100*os.FillFactor)
	for _, id := range []uint32{1, 2, 47, 48, 50000, n - 1, n} {
		if v, ok, _ := bulk.tree.Get(ctx, id, nil); !ok || !bytes.Equal(v, tleValue(id)) {
			t.Fatalf("bulk-loaded id %d missing", id)
		}
	}
	if _, ok, _ := bulk.tree.Get(ctx, n+1, nil); ok {
		t.Fatal("found a key never loaded")
	}
}

// Criterion 5: delete 1,000 ids; they are gone, the rest unaffected.
func testDelete(t *testing.T, frames int) {
	ctx := context.Background()
	e := newEnv(t, frames, Options{})
	rng := rand.New(rand.NewPCG(5, 5))
	perm := rng.Perm(10000)
	for _, i := range perm {
		if err := e.tree.Put(ctx, uint32(i), tleValue(uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	deleted := map[uint32]bool{}
	for _, i := range perm[:1000] {
		ok, err := e.tree.Delete(ctx, uint32(i))
		if err != nil || !ok {
			t.Fatalf("delete %d: %v %v", i, ok, err)
		}
		deleted[uint32(i)] = true
	}
	if ok, _ := e.tree.Delete(ctx, uint32(perm[0])); ok {
		t.Fatal("second delete reported success")
	}
	mustCheck(t, e.tree)
	for i := range uint32(10000) {
		v, ok, err := e.tree.Get(ctx, i, nil)
		if err != nil || ok == deleted[i] || (ok && !bytes.Equal(v, tleValue(i))) {
			t.Fatalf("id %d (deleted=%v): ok=%v err=%v", i, deleted[i], ok, err)
		}
	}
	if c := e.tree.Stats().Count; c != 9000 {
		t.Fatalf("count %d", c)
	}
	logPhase(t, e)
}

// Model-based: random puts, deletes, gets and scans against a Go map, with
// Check after every batch, under pool pressure and with value sizes that make
// the tree tall (so internal nodes split too).
func TestTreeAgainstModel(t *testing.T) {
	for _, cfg := range []struct {
		vsize, frames, ops int
		keySpace           uint32
	}{
		{6, 16, 20000, 5000},
		{MaxValueSize, 16, 12000, 1 << 30},
		{tle.RecordSize, 8, 20000, 3000},
	} {
		t.Run(fmt.Sprintf("v%d", cfg.vsize), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, cfg.frames, Options{ValueSize: cfg.vsize})
			rng := rand.New(rand.NewPCG(uint64(cfg.vsize), 99))
			model := map[uint32][]byte{}
			val := func() []byte {
				v := make([]byte, cfg.vsize)
				for i := range v {
					v[i] = byte(rng.Uint32())
				}
				return v
			}
			for step := range cfg.ops {
				k := rng.Uint32N(cfg.keySpace)
				switch op := rng.IntN(10); {
				case op < 6:
					v := val()
					if err := e.tree.Put(ctx, k, v); err != nil {
						t.Fatal(err)
					}
					model[k] = v
				case op < 8:
					_, want := model[k]
					ok, err := e.tree.Delete(ctx, k)
					if err != nil || ok != want {
						t.Fatalf("step %d delete %d: %v %v", step, k, ok, err)
					}
					delete(model, k)
				case op < 9:
					got, ok, err := e.tree.Get(ctx, k, nil)
					want, wok := model[k]
					if err != nil || ok != wok || !bytes.Equal(got, want) {
						t.Fatalf("step %d get %d: ok=%v err=%v", step, k, ok, err)
					}
				default:
					hi := k + rng.Uint32N(cfg.keySpace/10+1)
					var got []uint32
					if err := e.tree.Scan(ctx, k, hi, func(key uint32, v []byte) bool {
						if !bytes.Equal(v, model[key]) {
							t.Fatalf("scan value of %d", key)
						}
						got = append(got, key)
						return true
					}); err != nil {
						t.Fatal(err)
					}
					var want []uint32
					for key := range model {
						if key >= k && key <= hi {
							want = append(want, key)
						}
					}
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("step %d scan [%d,%d]: %d keys, want %d", step, k, hi, len(got), len(want))
					}
				}
				if step%1000 == 999 {
					mustCheck(t, e.tree)
					if s := e.pool.Stats(); s.Pinned != 0 {
						t.Fatalf("step %d: %d frames left pinned", step, s.Pinned)
					}
				}
			}
			mustCheck(t, e.tree)
			if c := e.tree.Stats().Count; c != uint64(len(model)) {
				t.Fatalf("count %d, model %d", c, len(model))
			}
			t.Logf("%v", e.tree.Stats())
			if s := e.tree.Stats(); cfg.vsize == MaxValueSize && (s.Height < 3 || s.Inners < 3) {
				t.Fatalf("tall configuration never split an internal node: %v", s)
			}
			// Everything survives a sync and reopen.
			if err := e.tree.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			_ = e.pager.Close()
			r := openEnv(t, e.path, cfg.frames, Options{})
			mustCheck(t, r.tree)
			var n int
			for k, v := range r.tree.All(ctx, nil) {
				if !bytes.Equal(v, model[k]) {
					t.Fatalf("after reopen: key %d", k)
				}
				n++
			}
			if n != len(model) {
				t.Fatalf("after reopen: %d keys, want %d", n, len(model))
			}
		})
	}
}

func TestBulkLoadErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 16, Options{})
	err := e.tree.BulkLoad(ctx, func(yield func(uint32, []byte) bool) {
		for _, k := range []uint32{1, 2, 3, 3, 4} {
			if !yield(k, tleValue(k)) {
				return
			}
		}
	})
	if !errors.Is(err, ErrUnsorted) {
		t.Fatalf("duplicate key: %v", err)
	}
	mustCheck(t, e.tree)
	if c := e.tree.Stats().Count; c != 3 {
		t.Fatalf("prefix of %d keys kept, want 3", c)
	}
	if err := e.tree.BulkLoad(ctx, maps.All(map[uint32][]byte{})); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("bulk into non-empty: %v", err)
	}
	if err := e.tree.Put(ctx, 9, []byte("short")); !errors.Is(err, ErrValueSize) {
		t.Fatalf("short value: %v", err)
	}
	_ = e.tree.Sync(ctx)
	_ = e.pager.Close()
	f, _ := os.OpenFile(e.path, os.O_RDWR, 0)
	pg, _ := pagefile.Open(f)
	defer pg.Close()
	if _, err := Open(ctx, bufpool.New(pg, bufpool.Config{}), Options{ValueSize: 6}); !errors.Is(err, ErrValueSize) {
		t.Fatalf("reopen with another value size: %v", err)
	}
}

// buildFile writes a synced 3-level tree of 20,000 TLE records and returns
// its path.
func buildFile(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, 64, Options{})
	for _, i := range rand.New(rand.NewPCG(7, 7)).Perm(20000) {
		if err := e.tree.Put(ctx, uint32(i), tleValue(uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.tree.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_ = e.pager.Close()
	return e.path
}

// exercise runs every read and write operation over a possibly corrupt tree
// and checks that what comes back is either an error or correct data.
func exercise(t *testing.T, path string, strict bool) (errs int) {
	t.Helper()
	ctx := context.Background()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		return 1
	}
	defer pg.Close()
	tr, err := Open(ctx, bufpool.New(pg, bufpool.Config{Frames: 16}), Options{})
	if err != nil {
		return 1
	}
	if tr.Check(ctx) != nil {
		errs++
	}
	for i := uint32(0); i < 20000; i += 7 {
		v, ok, err := tr.Get(ctx, i, nil)
		if err != nil {
			errs++
			continue
		}
		if strict && ok && !bytes.Equal(v, tleValue(i)) {
			t.Fatalf("corrupt file returned wrong data for %d", i)
		}
	}
	if tr.Scan(ctx, 0, 20000, func(k uint32, v []byte) bool {
		if strict && !bytes.Equal(v, tleValue(k)) {
			t.Fatalf("corrupt file scanned wrong data for %d", k)
		}
		return true
	}) != nil {
		errs++
	}
	for i := uint32(20000); i < 20500; i++ {
		if tr.Put(ctx, i, tleValue(i)) != nil {
			errs++
			break
		}
	}
	return errs
}

// A flipped bit anywhere in the file gives errors, never data or panics.
func TestFlippedBitsGiveErrors(t *testing.T) {
	path := buildFile(t)
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 11))
	pages := len(clean) / pagefile.PageSize
	for trial := range 24 {
		b := bytes.Clone(clean)
		page := rng.IntN(pages)
		if trial < 3 {
			page = trial // meta, and the first pages of the tree
		}
		b[page*pagefile.PageSize+rng.IntN(pagefile.PageSize)] ^= 1 << rng.IntN(8)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		exercise(t, path, true)
	}
}

// Hostile but correctly checksummed node pages (what a buggy writer could
// produce) give ErrCorrupt, never panics or hangs; Check reports them.
func TestResealedGarbageGivesErrors(t *testing.T) {
	path := buildFile(t)
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(12, 12))
	pages := len(clean) / pagefile.PageSize
	sawErr := 0
	for trial := range 40 {
		b := bytes.Clone(clean)
		id := 1 + rng.IntN(pages-1)
		pb := b[id*pagefile.PageSize : (id+1)*pagefile.PageSize]
		switch trial % 4 {
		case 0: // random count
			binary.LittleEndian.PutUint16(pb[offN:], uint16(rng.IntN(1000)))
		case 1: // random level
			pb[offLevel] = byte(rng.IntN(4))
		case 2: // child/sibling pointers to random pages, including self
			for o := offNext; o < offKeys; o += 4 {
				binary.LittleEndian.PutUint32(pb[o:], uint32(rng.IntN(pages+2)))
			}
			for o := offKeys + 4*innerCap; o+4 <= pagefile.PageSize; o += 4 {
				binary.LittleEndian.PutUint32(pb[o:], uint32(rng.IntN(pages+2)))
			}
		case 3: // shuffled keys
			for j := 0; j < 40; j++ {
				binary.LittleEndian.PutUint32(pb[offKeys+4*rng.IntN(40):], rng.Uint32N(20000))
			}
		}
		pagefile.Seal(pb, uint32(id))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// Rewritten keys pair old values with new keys, and in a leaf the
		// pointer area of case 2 is value bytes; only Check can notice
		// those, so data is compared only for counts and levels.
		if exercise(t, path, trial%4 < 2) > 0 {
			sawErr++
		}
	}
	if sawErr < 20 {
		t.Fatalf("only %d of 40 corruptions were noticed", sawErr)
	}
}

func FuzzDecodeNode(f *testing.F) {
	lay := newLayout(tle.RecordSize)
	leaf := make([]byte, pagefile.PageSize)
	initNode(leaf, 3, 0)
	for i := range 10 {
		lay.leafInsertAt(leaf, i, i, uint32(i*3), tleValue(uint32(i)))
	}
	inner := make([]byte, pagefile.PageSize)
	initNode(inner, 4, 1)
	setN(inner, 2)
	setKey(inner, 0, 10)
	setKey(inner, 1, 20)
	f.Add(leaf, tle.RecordSize, uint32(9))
	f.Add(inner, 6, uint32(15))
	f.Add([]byte{1, 2, 3}, 0, uint32(0))
	f.Fuzz(func(t *testing.T, page []byte, vsize int, key uint32) {
		nd, err := DecodeNode(page, vsize)
		if err != nil {
			return
		}
		for i := range nd.Len() {
			_ = nd.Key(i)
			if nd.Leaf() {
				if len(nd.Value(i)) != vsize {
					t.Fatal("value size")
				}
			}
		}
		if nd.Leaf() {
			i, ok := nd.Search(key)
			if i > nd.Len() || (ok && nd.Key(i) != key) {
				t.Fatalf("search %d: %d %v", key, i, ok)
			}
			_, _ = nd.Next(), nd.Prev()
		} else {
			for i := 0; i <= nd.Len(); i++ {
				_ = nd.Child(i)
			}
			if r := nd.Route(key); r > nd.Len() {
				t.Fatalf("route %d", r)
			}
		}
	})
}
