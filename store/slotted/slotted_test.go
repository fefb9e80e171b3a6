package slotted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
	"github.com/meridian-ops/meridian/store/tle"
)

func record(i int) []byte {
	r := tle.Record{NoradID: uint32(25544 + i), Epoch: 20177.5 + float64(i)/1000,
		MeanMotion: 15.49, Inclination: 51.64, ElementSet: uint16(i), RevNumber: uint32(i * 3)}
	r.SetDesignator(fmt.Sprintf("98%03dA", i%1000))
	b, _ := r.MarshalBinary()
	return b
}

func newHeap(t *testing.T, frames int) (*Heap, *bufpool.Pool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "heap.oor"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	pool := bufpool.New(pg, bufpool.Config{Frames: frames})
	h, err := OpenHeap(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return h, pool
}

// Capstone criterion 3: 200 records, 8 frames, read back in order with a
// hit rate above 90%.
func TestHeapHitRate(t *testing.T) {
	ctx := context.Background()
	h, pool := newHeap(t, 8)
	var rids []RID
	for i := range 200 {
		rid, err := h.Insert(ctx, record(i))
		if err != nil {
			t.Fatal(err)
		}
		rids = append(rids, rid)
	}
	if n := len(h.Pages()); n < 4 || n > 5 {
		t.Fatalf("200 records of 82 bytes on %d pages, want 4-5", n)
	}
	pool.ResetStats()
	var buf []byte
	for i, rid := range rids {
		var ok bool
		var err error
		buf, ok, err = h.Get(ctx, rid, buf[:0])
		if err != nil || !ok || !bytes.Equal(buf, record(i)) {
			t.Fatalf("record %d at %v: ok=%v err=%v", i, rid, ok, err)
		}
	}
	s := pool.Stats()
	if s.HitRate() <= 0.90 || s.Hits+s.Misses != 200 {
		t.Fatalf("read pass: %v", s)
	}
	t.Logf("read pass: %v", s)
}

// Capstone criteria 4 and 5: 40 records in one page, each found by its
// slot; delete every other one; compact; the rest keep their slot ids.
func TestPageInsertDeleteCompact(t *testing.T) {
	p := Init(make([]byte, pagefile.PageSize), 7)
	for i := range 40 {
		s, err := p.Insert(record(i))
		if err != nil || int(s) != i {
			t.Fatalf("insert %d: slot %d err %v", i, s, err)
		}
	}
	for i := range 40 {
		if got, ok := p.Get(uint16(i)); !ok || !bytes.Equal(got, record(i)) {
			t.Fatalf("slot %d", i)
		}
	}
	for i := 0; i < 40; i += 2 {
		if !p.Delete(uint16(i)) {
			t.Fatalf("delete %d", i)
		}
	}
	if p.Delete(0) {
		t.Fatal("double delete reported success")
	}
	freeBefore, contBefore := p.FreeSpace(), p.ContiguousFree()
	p.Compact()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		got, ok := p.Get(uint16(i))
		if i%2 == 0 && ok {
			t.Fatalf("deleted slot %d still returns data", i)
		}
		if i%2 == 1 && (!ok || !bytes.Equal(got, record(i))) {
			t.Fatalf("slot %d lost by compaction", i)
		}
	}
	if p.ContiguousFree() != p.FreeSpace() || p.FreeSpace() != freeBefore || contBefore >= p.ContiguousFree() {
		t.Fatalf("free %d contiguous %d (before %d/%d)", p.FreeSpace(), p.ContiguousFree(), freeBefore, contBefore)
	}
	if p.Live() != 20 {
		t.Fatalf("live %d", p.Live())
	}
}

// Capstone criterion 6: a full page is detected before anything is
// written; the heap then continues on a new page.
func TestPageFull(t *testing.T) {
	p := Init(make([]byte, pagefile.PageSize), 1)
	n := 0
	for {
		before := bytes.Clone(p)
		_, err := p.Insert(record(n))
		if errors.Is(err, ErrPageFull) {
			if !bytes.Equal(before, p) {
				t.Fatal("failed insert modified the page")
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := (pagefile.PageSize - dirStart) / (tle.RecordSize + slotSize); n != want {
		t.Fatalf("page held %d records, want %d", n, want)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, _ := newHeap(t, 4)
	for i := range n + 1 {
		if _, err := h.Insert(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.Pages()) != 2 {
		t.Fatalf("%d+1 records on %d pages", n, len(h.Pages()))
	}
	if _, err := p.Insert(make([]byte, MaxRecord+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
}

// Model-based: random inserts, deletes and compactions of random-length
// records against a map keyed by slot.
func TestPageAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := Init(make([]byte, pagefile.PageSize), 1)
	model := map[uint16][]byte{}
	for step := range 20000 {
		switch rng.IntN(5) {
		case 0, 1, 2:
			rec := make([]byte, rng.IntN(300))
			for i := range rec {
				rec[i] = byte(rng.Uint32())
			}
			fits := p.Fits(len(rec))
			s, err := p.Insert(rec)
			if errors.Is(err, ErrPageFull) {
				if fits {
					t.Fatalf("step %d: Fits said yes, Insert said full", step)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := model[s]; dup {
				t.Fatalf("step %d: slot %d handed out twice", step, s)
			}
			model[s] = rec
		case 3:
			s := uint16(rng.IntN(p.Slots() + 1))
			_, live := model[s]
			if p.Delete(s) != live {
				t.Fatalf("step %d: delete %d", step, s)
			}
			delete(model, s)
		case 4:
			p.Compact()
		}
		if err := p.Check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for s, want := range model {
			if got, ok := p.Get(s); !ok || !bytes.Equal(got, want) {
				t.Fatalf("step %d: slot %d", step, s)
			}
		}
	}
}

// A corrupted heap file gives errors, not panics or data.
func TestHeapCorruptFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "heap.oor")
	f, _ := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	pg, _ := pagefile.Open(f)
	pool := bufpool.New(pg, bufpool.Config{Frames: 4})
	h, _ := OpenHeap(ctx, pool)
	var rids []RID
	for i := range 100 {
		rid, err := h.Insert(ctx, record(i))
		if err != nil {
			t.Fatal(err)
		}
		rids = append(rids, rid)
	}
	if err := pool.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_ = pg.Close()
	raw, _ := os.ReadFile(path)
	raw[pagefile.PageSize+2000] ^= 0x10
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ = os.OpenFile(path, os.O_RDWR, 0)
	pg, _ = pagefile.Open(f)
	defer pg.Close()
	pool = bufpool.New(pg, bufpool.Config{Frames: 4})
	if _, err := OpenHeap(ctx, pool); !errors.Is(err, pagefile.ErrChecksum) {
		t.Fatalf("open corrupt heap: %v", err)
	}
	h = &Heap{pool: pool, pages: []uint32{0, 1, 2}}
	bad := 0
	for _, rid := range rids {
		_, _, err := h.Get(ctx, rid, nil)
		if err != nil {
			if !errors.Is(err, pagefile.ErrChecksum) || rid.Page != 1 {
				t.Fatalf("%v: %v", rid, err)
			}
			bad++
		}
	}
	if bad == 0 {
		t.Fatal("no read saw the corruption")
	}
}

func FuzzPage(f *testing.F) {
	p := Init(make([]byte, pagefile.PageSize), 1)
	for i := range 10 {
		_, _ = p.Insert(record(i))
	}
	p.Delete(3)
	f.Add([]byte(p), []byte("new record"))
	f.Add(make([]byte, pagefile.PageSize), []byte{})
	f.Add([]byte{1, 2, 3}, []byte{4})
	f.Fuzz(func(t *testing.T, b, rec []byte) {
		pg := Page(b)
		for s := range 300 {
			pg.Get(uint16(s)) // must not panic on anything
		}
		if len(b) != pagefile.PageSize || pg.Check() != nil {
			return
		}
		live := pg.Live()
		if _, err := pg.Insert(rec); err == nil {
			live++
		}
		pg.Compact()
		if err := pg.Check(); err != nil || pg.Live() != live {
			t.Fatalf("valid page broke after insert+compact: %v", err)
		}
	})
}
