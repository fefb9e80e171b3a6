package bufpool

import (
	"context"
	"errors"
	"fmt"
	"sync"

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
type Frame struct {
	data  []byte // PageSize bytes, a window of the pool's slab
	id    uint32 // resident page, or noPage
	pins  int32
	dirty bool
	ref   bool
}

// ID returns the page id held by the frame.
func (f *Frame) ID() uint32 { return f.id }

// Data returns the page bytes, PageSize long. Writers must Unpin with
// dirty=true.
func (f *Frame) Data() []byte { return f.data }

// Pool caches pages of one Pager.
type Pool struct {
	pager *pagefile.Pager

	mu     sync.Mutex
	frames []Frame
	table  []int32 // page id -> frame index+1 (0 = not resident)
	hand   int
	st     Stats
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
		p.frames[i].id = noPage
	}
	p.st.Frames = n
	return p
}

// Pager returns the page file under the pool.
func (p *Pool) Pager() *pagefile.Pager { return p.pager }

// Fetch pins page id and returns its frame, reading and verifying it from
// the file on a miss.
func (p *Pool) Fetch(ctx context.Context, id uint32) (*Frame, error) {
	p.mu.Lock()
	if int(id) < len(p.table) {
		if fi := p.table[id]; fi != 0 {
			f := &p.frames[fi-1]
			f.pins++
			f.ref = true
			p.st.Hits++
			p.mu.Unlock()
			return f, nil
		}
	}
	defer p.mu.Unlock()
	fi, err := p.victim(ctx)
	if err != nil {
		return nil, fmt.Errorf("bufpool: fetch page %d: %w", id, err)
	}
	f := &p.frames[fi]
	if err := p.pager.ReadPage(ctx, id, f.data); err != nil {
		return nil, err
	}
	p.st.Misses++
	p.install(fi, id)
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
		return nil, err
	}
	f := &p.frames[fi]
	pagefile.Init(f.data, id, t)
	p.install(fi, id)
	f.dirty = true
	return f, nil
}

// Unpin releases one pin on f; dirty records that the caller changed it.
func (p *Pool) Unpin(f *Frame, dirty bool) {
	p.mu.Lock()
	if f.pins <= 0 {
		p.mu.Unlock()
		panic(fmt.Sprintf("bufpool: unpin of unpinned page %d", f.id))
	}
	f.pins--
	if dirty {
		f.dirty = true
	}
	p.mu.Unlock()
}

// install maps id to frame fi, pinned once. Called with mu held.
func (p *Pool) install(fi int, id uint32) {
	if int(id) >= len(p.table) {
		n := max(int(id)+1, 2*len(p.table), 64)
		t := make([]int32, n)
		copy(t, p.table)
		p.table = t
	}
	p.table[id] = int32(fi + 1)
	f := &p.frames[fi]
	f.id = id
	f.pins = 1
	f.ref = true
	f.dirty = false
}

// victim picks a frame to reuse with the CLOCK sweep, writing it back if it
// is dirty and unmapping its page. Called with mu held.
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
		if f.pins > 0 {
			continue
		}
		if f.id == noPage {
			return fi, nil
		}
		if f.ref {
			f.ref = false
			continue
		}
		if f.dirty {
			if err := p.pager.WritePage(ctx, f.id, f.data); err != nil {
				return 0, err
			}
			f.dirty = false
			p.st.Writes++
		}
		p.table[f.id] = 0
		f.id = noPage
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
		if f.id == noPage || !f.dirty {
			continue
		}
		if err := p.pager.WritePage(ctx, f.id, f.data); err != nil {
			return err
		}
		f.dirty = false
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
	for i := range p.frames {
		f := &p.frames[i]
		if f.id == noPage {
			continue
		}
		s.Resident++
		if f.pins > 0 {
			s.Pinned++
		}
		if f.dirty {
			s.Dirty++
		}
	}
	return s
}

// ResetStats zeroes the hit, miss, eviction and write counters.
func (p *Pool) ResetStats() {
	p.mu.Lock()
	p.st = Stats{Frames: len(p.frames)}
	p.mu.Unlock()
}
