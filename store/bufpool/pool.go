package bufpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/meridian-ops/meridian/store/pagefile"
)

// DefaultFrames is the pool size used when Config.Frames is zero (4 MiB).
const DefaultFrames = 1024

// ErrAllPinned is returned by Fetch and NewPage when every frame is pinned,
// so no page can be brought in.
var ErrAllPinned = errors.New("bufpool: all frames pinned")

// Config sizes a Pool. The zero value is usable.
type Config struct {
	Frames int // number of 4 KiB frames; 0 means DefaultFrames
}

// Stats are the pool's counters since creation or the last ResetStats.
type Stats struct {
	Hits      uint64 // Fetch found the page in a frame
	Misses    uint64 // Fetch read the page from the file
	Evictions uint64 // a resident page was dropped to make room
	Writes    uint64 // dirty pages written back (eviction or Flush)
	Frames    int    // pool size
	Resident  int    // frames holding a page
	Pinned    int    // frames with pin count > 0
	Dirty     int    // frames with unwritten changes
}

// HitRate is Hits/(Hits+Misses), or 0 with no fetches.
func (s Stats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

func (s Stats) String() string {
	return fmt.Sprintf("hits=%d misses=%d hit-rate=%.1f%% evictions=%d writes=%d frames=%d resident=%d pinned=%d dirty=%d",
		s.Hits, s.Misses, 100*s.HitRate(), s.Evictions, s.Writes, s.Frames, s.Resident, s.Pinned, s.Dirty)
}

const noPage = ^uint32(0)

// Frame is one buffer-pool slot. Its page bytes are valid between the Fetch
// (or NewPage) that returned it and the matching Unpin.
//
// pins is -1 while the pool owns the frame (evicting or installing a page);
// a hit pins with a compare-and-swap from a non-negative count, so the hit
// path takes no lock, and eviction can only claim a frame whose count is 0.
type Frame struct {
	data  []byte // PageSize bytes, a window of the pool's slab
	id    atomic.Uint32
	pins  atomic.Int32
	dirty atomic.Bool
	ref   atomic.Bool
}

// ID returns the page id held by the frame.
func (f *Frame) ID() uint32 { return f.id.Load() }

// Data returns the page bytes, PageSize long. Writers must Unpin with
// dirty=true.
func (f *Frame) Data() []byte { return f.data }

func (f *Frame) tryPin() bool {
	for {
		n := f.pins.Load()
		if n < 0 {
			return false
		}
		if f.pins.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Pool caches pages of one Pager.
type Pool struct {
	pager  *pagefile.Pager
	frames []Frame
	table  atomic.Pointer[[]atomic.Int32] // page id -> frame index+1 (0 = not resident)
	hits   atomic.Uint64

	mu   sync.Mutex // serialises misses, eviction, Flush and table growth
	hand int
	st   Stats
}

// New creates a pool over pager.
func New(pager *pagefile.Pager, cfg Config) *Pool {
	n := cfg.Frames
	if n <= 0 {
		n = DefaultFrames
	}
	slab := make([]byte, n*pagefile.PageSize)
	p := &Pool{pager: pager, frames: make([]Frame, n)}
	for i := range p.frames {
		p.frames[i].data = slab[i*pagefile.PageSize : (i+1)*pagefile.PageSize : (i+1)*pagefile.PageSize]
		p.frames[i].id.Store(noPage)
	}
	p.table.Store(new([]atomic.Int32))
	p.st.Frames = n
	return p
}

// Pager returns the page file under the pool.
func (p *Pool) Pager() *pagefile.Pager { return p.pager }

// Fetch pins page id and returns its frame, reading and verifying it from
// the file on a miss.
func (p *Pool) Fetch(ctx context.Context, id uint32) (*Frame, error) {
	if t := *p.table.Load(); int(id) < len(t) {
		if fi := t[id].Load(); fi != 0 {
			f := &p.frames[fi-1]
			if f.tryPin() {
				if f.id.Load() == id {
					if !f.ref.Load() {
						f.ref.Store(true)
					}
					p.hits.Add(1)
					return f, nil
				}
				f.pins.Add(-1) // the frame was reused for another page
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Re-check under the lock: another miss may have loaded the page.
	if t := *p.table.Load(); int(id) < len(t) {
		if fi := t[id].Load(); fi != 0 {
			f := &p.frames[fi-1]
			if f.tryPin() {
				if f.id.Load() == id {
					f.ref.Store(true)
					p.hits.Add(1)
					return f, nil
				}
				f.pins.Add(-1)
			}
		}
	}
	fi, err := p.victim(ctx)
	if err != nil {
		return nil, fmt.Errorf("bufpool: fetch page %d: %w", id, err)
	}
	f := &p.frames[fi]
	if err := p.pager.ReadPage(ctx, id, f.data); err != nil {
		f.pins.Store(0) // free frame
		return nil, err
	}
	p.st.Misses++
	p.install(fi, id, false)
	return f, nil
}

// NewPage allocates a fresh page of type t in the file, formats it in a
// frame and returns it pinned and dirty.
func (p *Pool) NewPage(ctx context.Context, t pagefile.Type) (*Frame, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fi, err := p.victim(ctx)
	if err != nil {
		return nil, fmt.Errorf("bufpool: new page: %w", err)
	}
	id, err := p.pager.Allocate()
	if err != nil {
		p.frames[fi].pins.Store(0)
		return nil, err
	}
	f := &p.frames[fi]
	pagefile.Init(f.data, id, t)
	p.install(fi, id, true)
	return f, nil
}

// Unpin releases one pin on f; dirty records that the caller changed it.
func (p *Pool) Unpin(f *Frame, dirty bool) {
	if dirty {
		f.dirty.Store(true)
	}
	if f.pins.Add(-1) < 0 {
		panic(fmt.Sprintf("bufpool: unpin of unpinned page %d", f.id.Load()))
	}
}

// install maps id to frame fi (owned: pins == -1) and publishes it pinned
// once. Called with mu held.
func (p *Pool) install(fi int, id uint32, dirty bool) {
	t := *p.table.Load()
	if int(id) >= len(t) {
		nt := make([]atomic.Int32, max(int(id)+1, 2*len(t), 64))
		for i := range t {
			nt[i].Store(t[i].Load())
		}
		p.table.Store(&nt)
		t = nt
	}
	f := &p.frames[fi]
	f.id.Store(id)
	f.dirty.Store(dirty)
	f.ref.Store(true)
	t[id].Store(int32(fi + 1))
	f.pins.Store(1)
}

// victim claims a frame to reuse with the CLOCK sweep, writing it back if it
// is dirty and unmapping its page. The frame is returned owned (pins == -1).
// Called with mu held.
func (p *Pool) victim(ctx context.Context) (int, error) {
	n := len(p.frames)
	// Two full turns: the first may only clear reference bits.
	for range 2*n + 1 {
		fi := p.hand
		p.hand++
		if p.hand == n {
			p.hand = 0
		}
		f := &p.frames[fi]
		if f.pins.Load() != 0 {
			continue
		}
		id := f.id.Load()
		if id != noPage && f.ref.Load() {
			f.ref.Store(false)
			continue
		}
		if !f.pins.CompareAndSwap(0, -1) {
			continue // pinned by a hit just now
		}
		if id == noPage {
			return fi, nil
		}
		if f.dirty.Load() {
			if err := p.pager.WritePage(ctx, id, f.data); err != nil {
				f.pins.Store(0)
				return 0, err
			}
			f.dirty.Store(false)
			p.st.Writes++
		}
		(*p.table.Load())[id].Store(0)
		f.id.Store(noPage)
		p.st.Evictions++
		return fi, nil
	}
	return 0, ErrAllPinned
}

// Flush writes every dirty page back to the file (no fsync). Pinned pages
// are written too; callers must not be modifying them concurrently.
func (p *Pool) Flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.frames {
		f := &p.frames[i]
		id := f.id.Load()
		if id == noPage || !f.dirty.Load() {
			continue
		}
		if err := p.pager.WritePage(ctx, id, f.data); err != nil {
			return err
		}
		f.dirty.Store(false)
		p.st.Writes++
	}
	return nil
}

// Sync flushes dirty pages and fsyncs the file.
func (p *Pool) Sync(ctx context.Context) error {
	if err := p.Flush(ctx); err != nil {
		return err
	}
	return p.pager.Sync(ctx)
}

// Stats returns the current counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.Hits = p.hits.Load()
	for i := range p.frames {
		f := &p.frames[i]
		if f.id.Load() == noPage {
			continue
		}
		s.Resident++
		if f.pins.Load() > 0 {
			s.Pinned++
		}
		if f.dirty.Load() {
			s.Dirty++
		}
	}
	return s
}

// ResetStats zeroes the hit, miss, eviction and write counters.
func (p *Pool) ResetStats() {
	p.mu.Lock()
	p.st = Stats{Frames: len(p.frames)}
	p.hits.Store(0)
	p.mu.Unlock()
}
