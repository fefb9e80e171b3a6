package slotted

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/meridian-ops/meridian/store/pagefile"
)

// Slotted page body, little-endian, after the 24-byte pagefile header:
//
//	offset size field
//	    24    2 slot count   directory entries, tombstones included
//	    26    2 live count   records not deleted
//	    28    2 free end     start of the record area (records grow down from 4096)
//	    30    2 reserved
//	    32  4×n slot dir     per slot: record offset u16, record length u16;
//	                         offset 0 marks a tombstone
//	     …      free space   between the end of the directory and free end
//	free end    records      packed toward the end of the page
//
//	+--------+-----+-------------------+----------+----------------------+
//	| header | hdr | slot 0 | slot 1 … | free ... | … record 1 | record 0 |
//	+--------+-----+-------------------+----------+----------------------+
//	0        24    32                                                  4096
const (
	offSlots   = pagefile.HeaderSize
	offLive    = offSlots + 2
	offFreeEnd = offSlots + 4
	dirStart   = offSlots + 8
	slotSize   = 4

	// MaxRecord is the largest record a page can hold.
	MaxRecord = pagefile.PageSize - dirStart - slotSize
)

var (
	// ErrPageFull is returned by Insert when the record (plus a slot entry
	// if needed) does not fit; the page is left unchanged.
	ErrPageFull = errors.New("slotted: page full")
	// ErrTooLarge is returned for records over MaxRecord bytes.
	ErrTooLarge = errors.New("slotted: record larger than a page")
	// ErrCorrupt is returned by Check (and by Heap on a page of the wrong
	// type) when a page's layout is inconsistent.
	ErrCorrupt = errors.New("slotted: corrupt page")
)

// Page is a slotted page: a PageSize byte slice, typically a buffer-pool
// frame's Data.
type Page []byte

// Init formats buf as an empty slotted page with the given id.
func Init(buf []byte, id uint32) Page {
	pagefile.Init(buf, id, pagefile.TypeSlotted)
	p := Page(buf[:pagefile.PageSize])
	p.put(offFreeEnd, pagefile.PageSize)
	return p
}

func (p Page) u16(off int) int        { return int(binary.LittleEndian.Uint16(p[off:])) }
func (p Page) put(off int, v int)     { binary.LittleEndian.PutUint16(p[off:], uint16(v)) }
func (p Page) freeEnd() int           { return p.u16(offFreeEnd) }
func (p Page) slotOff(s int) int      { return dirStart + s*slotSize }
func (p Page) entry(s int) (int, int) { return p.u16(p.slotOff(s)), p.u16(p.slotOff(s) + 2) }

// Slots returns the number of slot ids in use (live and tombstoned).
func (p Page) Slots() int { return p.u16(offSlots) }

// Live returns the number of records not deleted.
func (p Page) Live() int { return p.u16(offLive) }

// ContiguousFree returns the bytes between the slot directory and the record
// area.
func (p Page) ContiguousFree() int {
	return max(0, p.freeEnd()-p.slotOff(p.Slots()))
}

// FreeSpace returns the free bytes including holes left by deletes, i.e.
// what ContiguousFree becomes after Compact.
func (p Page) FreeSpace() int {
	used := 0
	for s := range p.Slots() {
		if off, n := p.entry(s); off != 0 {
			used += n
		}
	}
	return max(0, pagefile.PageSize-p.slotOff(p.Slots())-used)
}

// Get returns the record in slot s (borrowed from the page) and whether it
// exists. It never panics, even on a malformed page.
func (p Page) Get(s uint16) ([]byte, bool) {
	if len(p) != pagefile.PageSize || int(s) >= p.Slots() || p.slotOff(int(s)+1) > pagefile.PageSize {
		return nil, false
	}
	off, n := p.entry(int(s))
	if off == 0 || off < dirStart || off+n > pagefile.PageSize {
		return nil, false
	}
	return p[off : off+n], true
}

// Fits reports whether a record of n bytes can be inserted (possibly after
// an implicit compaction).
func (p Page) Fits(n int) bool {
	need := n
	if p.freeSlot() < 0 {
		need += slotSize
	}
	return n <= MaxRecord && need <= p.FreeSpace()
}

func (p Page) freeSlot() int {
	for s := range p.Slots() {
		if off, _ := p.entry(s); off == 0 {
			return s
		}
	}
	return -1
}

// Insert stores rec and returns its slot id. The room check happens first:
// on ErrPageFull or ErrTooLarge the page is unchanged.
func (p Page) Insert(rec []byte) (uint16, error) {
	if len(rec) > MaxRecord {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(rec))
	}
	s := p.freeSlot()
	need := len(rec)
	if s < 0 {
		need += slotSize
	}
	if need > p.FreeSpace() {
		return 0, fmt.Errorf("%w: need %d bytes, %d free", ErrPageFull, need, p.FreeSpace())
	}
	if need > p.ContiguousFree() {
		p.Compact()
	}
	if s < 0 {
		s = p.Slots()
		p.put(offSlots, s+1)
	}
	off := p.freeEnd() - len(rec)
	copy(p[off:], rec)
	p.put(offFreeEnd, off)
	p.put(p.slotOff(s), off)
	p.put(p.slotOff(s)+2, len(rec))
	p.put(offLive, p.Live()+1)
	return uint16(s), nil
}

// Delete tombstones slot s and reports whether a record was there. The bytes
// stay in place until Compact.
func (p Page) Delete(s uint16) bool {
	if _, ok := p.Get(s); !ok {
		return false
	}
	p.put(p.slotOff(int(s)), 0)
	p.put(p.slotOff(int(s))+2, 0)
	p.put(offLive, p.Live()-1)
	// Trailing tombstones give their directory entries back.
	n := p.Slots()
	for n > 0 {
		if off, _ := p.entry(n - 1); off != 0 {
			break
		}
		n--
	}
	p.put(offSlots, n)
	return true
}

// Compact moves live records together at the end of the page so that all
// free space is contiguous. Slot ids do not change.
func (p Page) Compact() {
	type live struct{ slot, off, n int }
	var buf [pagefile.PageSize / slotSize]live
	recs := buf[:0]
	for s := range p.Slots() {
		if off, n := p.entry(s); off != 0 {
			recs = append(recs, live{s, off, n})
		}
	}
	// Move the records nearest the end first so no move overwrites a record
	// not yet moved.
	slices.SortFunc(recs, func(a, b live) int { return b.off - a.off })
	end := pagefile.PageSize
	for _, r := range recs {
		end -= r.n
		copy(p[end:end+r.n], p[r.off:r.off+r.n])
		p.put(p.slotOff(r.slot), end)
	}
	clear(p[p.slotOff(p.Slots()):end])
	p.put(offFreeEnd, end)
}

// Check verifies the page layout: counts, bounds, and that no two records
// overlap. It is the validating decoder for slotted pages read from disk.
func (p Page) Check() error {
	if len(p) != pagefile.PageSize {
		return fmt.Errorf("%w: %d bytes", ErrCorrupt, len(p))
	}
	if t := pagefile.PageType(p); t != pagefile.TypeSlotted {
		return fmt.Errorf("%w: page type %v", ErrCorrupt, t)
	}
	n := p.Slots()
	dirEnd := p.slotOff(n)
	if dirEnd > p.freeEnd() || p.freeEnd() > pagefile.PageSize {
		return fmt.Errorf("%w: %d slots, free end %d", ErrCorrupt, n, p.freeEnd())
	}
	type span struct{ off, end int }
	spans := make([]span, 0, n)
	live := 0
	for s := range n {
		off, l := p.entry(s)
		if off == 0 {
			continue
		}
		if off < p.freeEnd() || off+l > pagefile.PageSize {
			return fmt.Errorf("%w: slot %d at [%d,%d) outside record area [%d,%d)", ErrCorrupt, s, off, off+l, p.freeEnd(), pagefile.PageSize)
		}
		live++
		if l > 0 { // empty records occupy no bytes and cannot overlap
			spans = append(spans, span{off, off + l})
		}
	}
	if live != p.Live() {
		return fmt.Errorf("%w: live count %d, %d live slots", ErrCorrupt, p.Live(), live)
	}
	if n > 0 {
		if off, _ := p.entry(n - 1); off == 0 {
			return fmt.Errorf("%w: trailing tombstone in slot %d", ErrCorrupt, n-1)
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.off - b.off })
	for i := 1; i < len(spans); i++ {
		if spans[i].off < spans[i-1].end {
			return fmt.Errorf("%w: records overlap at %d", ErrCorrupt, spans[i].off)
		}
	}
	return nil
}
