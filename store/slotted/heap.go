package slotted

import (
	"context"
	"errors"
	"fmt"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
)

// RID addresses one record: the page it lives in and its slot there.
type RID struct {
	Page uint32
	Slot uint16
}

func (r RID) String() string { return fmt.Sprintf("(%d,%d)", r.Page, r.Slot) }

// Heap is a set of slotted pages in a buffer pool. Inserts go to the most
// recently allocated page until it is full, then a new page is allocated.
type Heap struct {
	pool  *bufpool.Pool
	pages []uint32
}

// OpenHeap returns a heap over every slotted page already in the pool's
// file (none for a new file).
func OpenHeap(ctx context.Context, pool *bufpool.Pool) (*Heap, error) {
	h := &Heap{pool: pool}
	for id := range pool.Pager().PageCount() {
		f, err := pool.Fetch(ctx, id)
		if err != nil {
			return nil, err
		}
		if pagefile.PageType(f.Data()) == pagefile.TypeSlotted {
			if err := Page(f.Data()).Check(); err != nil {
				pool.Unpin(f, false)
				return nil, fmt.Errorf("slotted: page %d: %w", id, err)
			}
			h.pages = append(h.pages, id)
		}
		pool.Unpin(f, false)
	}
	return h, nil
}

// Pages returns the ids of the heap's pages in allocation order.
func (h *Heap) Pages() []uint32 { return h.pages }

// Insert stores rec and returns its RID.
func (h *Heap) Insert(ctx context.Context, rec []byte) (RID, error) {
	if len(h.pages) > 0 {
		id := h.pages[len(h.pages)-1]
		f, err := h.pool.Fetch(ctx, id)
		if err != nil {
			return RID{}, err
		}
		s, err := Page(f.Data()).Insert(rec)
		h.pool.Unpin(f, err == nil)
		if err == nil {
			return RID{id, s}, nil
		}
		if !errors.Is(err, ErrPageFull) {
			return RID{}, err
		}
	}
	f, err := h.pool.NewPage(ctx, pagefile.TypeSlotted)
	if err != nil {
		return RID{}, err
	}
	p := Init(f.Data(), f.ID())
	s, err := p.Insert(rec)
	h.pool.Unpin(f, true)
	if err != nil {
		return RID{}, err
	}
	h.pages = append(h.pages, f.ID())
	return RID{f.ID(), s}, nil
}

// fetch pins a heap page and checks its type.
func (h *Heap) fetch(ctx context.Context, id uint32) (*bufpool.Frame, Page, error) {
	f, err := h.pool.Fetch(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if t := pagefile.PageType(f.Data()); t != pagefile.TypeSlotted {
		h.pool.Unpin(f, false)
		return nil, nil, fmt.Errorf("%w: page %d is a %v page", ErrCorrupt, id, t)
	}
	return f, Page(f.Data()), nil
}

// Get appends the record at rid to dst. found is false for a deleted or
// never-used slot.
func (h *Heap) Get(ctx context.Context, rid RID, dst []byte) (out []byte, found bool, err error) {
	f, p, err := h.fetch(ctx, rid.Page)
	if err != nil {
		return dst, false, err
	}
	rec, ok := p.Get(rid.Slot)
	if ok {
		dst = append(dst, rec...)
	}
	h.pool.Unpin(f, false)
	return dst, ok, nil
}

// Delete tombstones rid and reports whether a record was there.
func (h *Heap) Delete(ctx context.Context, rid RID) (bool, error) {
	f, p, err := h.fetch(ctx, rid.Page)
	if err != nil {
		return false, err
	}
	ok := p.Delete(rid.Slot)
	h.pool.Unpin(f, ok)
	return ok, nil
}

// Compact compacts one page; RIDs stay valid.
func (h *Heap) Compact(ctx context.Context, page uint32) error {
	f, p, err := h.fetch(ctx, page)
	if err != nil {
		return err
	}
	if err := p.Check(); err != nil {
		h.pool.Unpin(f, false)
		return fmt.Errorf("slotted: compact page %d: %w", page, err)
	}
	p.Compact()
	h.pool.Unpin(f, true)
	return nil
}

// PageStats summarises one page: slot ids, live records, free bytes (total and
// contiguous).
func (h *Heap) PageStats(ctx context.Context, page uint32) (slots, live, free, contiguous int, err error) {
	f, p, err := h.fetch(ctx, page)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer h.pool.Unpin(f, false)
	return p.Slots(), p.Live(), p.FreeSpace(), p.ContiguousFree(), nil
}
