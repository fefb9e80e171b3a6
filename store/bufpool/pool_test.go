package bufpool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/pagefile"
)

func newPool(t testing.TB, frames int) (*Pool, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pool.oor")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	return New(pg, Config{Frames: frames}), path
}

const stampOff = pagefile.HeaderSize

// Model-based: random new/fetch/modify/unpin on a 4-frame pool over 40 pages
// must always read back the last value written to each page.
func TestPoolAgainstModel(t *testing.T) {
	ctx := context.Background()
	p, _ := newPool(t, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[uint32]uint64{}
	var pinned []*Frame
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op == 0 && len(model) < 40:
			f, err := p.NewPage(ctx, pagefile.TypeSlotted)
			if errors.Is(err, ErrAllPinned) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			v := rng.Uint64()
			binary.LittleEndian.PutUint64(f.Data()[stampOff:], v)
			model[f.ID()] = v
			p.Unpin(f, true)
		case op <= 6 && len(model) > 0:
			id := uint32(rng.IntN(len(model)))
			f, err := p.Fetch(ctx, id)
			if errors.Is(err, ErrAllPinned) {
				if len(pinned) < 4 {
					t.Fatalf("step %d: all pinned with %d pins held", step, len(pinned))
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if got := binary.LittleEndian.Uint64(f.Data()[stampOff:]); got != model[id] {
				t.Fatalf("step %d page %d: got %x want %x", step, id, got, model[id])
			}
			if rng.IntN(2) == 0 {
				v := rng.Uint64()
				binary.LittleEndian.PutUint64(f.Data()[stampOff:], v)
				model[id] = v
				p.Unpin(f, true)
			} else if rng.IntN(3) == 0 {
				pinned = append(pinned, f) // hold it a while
			} else {
				p.Unpin(f, false)
			}
		case len(pinned) > 0:
			p.Unpin(pinned[0], false)
			pinned = pinned[1:]
		}
		if s := p.Stats(); s.Pinned > len(pinned) {
			t.Fatalf("step %d: %d frames pinned, %d pins held", step, s.Pinned, len(pinned))
		}
	}
	for _, f := range pinned {
		p.Unpin(f, false)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything reached the file: a fresh pool reads the model back.
	q := New(p.Pager(), Config{Frames: 2})
	for id, v := range model {
		f, err := q.Fetch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint64(f.Data()[stampOff:]); got != v {
			t.Fatalf("after flush page %d: got %x want %x", id, got, v)
		}
		q.Unpin(f, false)
	}
	if s := p.Stats(); s.Evictions == 0 || s.Writes == 0 || s.Dirty != 0 {
		t.Fatalf("expected evictions and write-backs, got %v", s)
	}
}

func TestAllPinned(t *testing.T) {
	ctx := context.Background()
	p, _ := newPool(t, 2)
	a, _ := p.NewPage(ctx, pagefile.TypeSlotted)
	b, _ := p.NewPage(ctx, pagefile.TypeSlotted)
	if _, err := p.NewPage(ctx, pagefile.TypeSlotted); !errors.Is(err, ErrAllPinned) {
		t.Fatalf("third page with two frames pinned: %v", err)
	}
	p.Unpin(a, true)
	c, err := p.NewPage(ctx, pagefile.TypeSlotted)
	if err != nil {
		t.Fatal(err)
	}
	p.Unpin(b, true)
	p.Unpin(c, true)
}

func TestHitsAndMisses(t *testing.T) {
	ctx := context.Background()
	p, _ := newPool(t, 3)
	for range 5 {
		f, _ := p.NewPage(ctx, pagefile.TypeSlotted)
		p.Unpin(f, true)
	}
	p.ResetStats()
	// Pages 2,3,4 are resident (3 frames): three hits, then two misses.
	for _, id := range []uint32{2, 3, 4, 0, 1} {
		f, err := p.Fetch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p.Unpin(f, false)
	}
	if s := p.Stats(); s.Hits != 3 || s.Misses != 2 || s.Evictions != 2 {
		t.Fatalf("got %v", s)
	}
}

func TestCorruptPageNeverEntersPool(t *testing.T) {
	ctx := context.Background()
	p, path := newPool(t, 2)
	f, _ := p.NewPage(ctx, pagefile.TypeSlotted)
	copy(f.Data()[stampOff:], "orbital")
	p.Unpin(f, true)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	q := New(p.Pager(), Config{Frames: 2})
	raw, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer raw.Close()
	if _, err := raw.WriteAt([]byte{'X'}, stampOff+3); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Fetch(ctx, 0); !errors.Is(err, pagefile.ErrChecksum) {
		t.Fatalf("corrupt page: %v", err)
	}
	if s := q.Stats(); s.Resident != 0 || s.Pinned != 0 {
		t.Fatalf("corrupt page left state behind: %v", s)
	}
}

func BenchmarkFetchHit(b *testing.B) {
	ctx := context.Background()
	p, _ := newPool(b, 64)
	for range 64 {
		f, _ := p.NewPage(ctx, pagefile.TypeSlotted)
		p.Unpin(f, true)
	}
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		f, err := p.Fetch(ctx, i&63)
		if err != nil {
			b.Fatal(err)
		}
		p.Unpin(f, false)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fetches/s")
}

// Concurrent readers over a pool smaller than the page set: the lock-free
// hit path and eviction race constantly; every pinned frame must hold the
// page that was asked for. Run with -race.
func TestConcurrentFetch(t *testing.T) {
	ctx := context.Background()
	p, _ := newPool(t, 6)
	const pages = 24
	for range pages {
		f, err := p.NewPage(ctx, pagefile.TypeSlotted)
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint64(f.Data()[stampOff:], uint64(f.ID())*1000003)
		p.Unpin(f, true)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 20000 {
				id := uint32(rng.IntN(pages))
				f, err := p.Fetch(ctx, id)
				if errors.Is(err, ErrAllPinned) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if got := binary.LittleEndian.Uint64(f.Data()[stampOff:]); f.ID() != id || got != uint64(id)*1000003 {
					errs <- fmt.Errorf("asked for page %d, frame holds %d (stamp %d)", id, f.ID(), got)
					p.Unpin(f, false)
					return
				}
				p.Unpin(f, false)
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := p.Stats(); s.Pinned != 0 || s.Hits == 0 || s.Misses == 0 {
		t.Fatalf("after concurrent fetches: %v", s)
	}
}
