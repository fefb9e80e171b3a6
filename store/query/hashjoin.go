package query

import (
	"context"
	"math/bits"
)

// HashJoin is the equi-join on NORAD id. Open consumes Right (the build
// side) into an open-addressing hash table; Next then streams Left (the
// probe side) and emits, per probe row, every build row with the same id in
// build order. Left of each Joined is the probe row, Right the build row.
// Build-side memory is reused across Opens.
type HashJoin struct {
	Left  Operator[Row] // probe
	Right Operator[Row] // build, consumed in Open

	build []Row
	slots []hslot
	next  []int32 // next[i]: index+1 of the next build row with row i's key
	shift uint32

	probe *Row
	chain int32 // index+1 of the next build row to emit for probe
	out   Joined
	open  bool
	n     int64
}

// hslot is one bucket: a key and the index+1 of its first build row
// (0 means empty).
type hslot struct {
	key  uint32
	head int32
}

// Describe implements Node.
func (h *HashJoin) Describe() string {
	return "HashJoin on norad_id (build right, probe left)"
}

// Children implements Node.
func (h *HashJoin) Children() []Node { return []Node{h.Left, h.Right} }

// Rows implements Node.
func (h *HashJoin) Rows() int64 { return h.n }

// BuildRows is the size of the hash table built by the last Open.
func (h *HashJoin) BuildRows() int { return len(h.build) }

// Open implements Operator.
func (h *HashJoin) Open(ctx context.Context) error {
	h.build, h.probe, h.chain, h.n, h.open = h.build[:0], nil, 0, 0, false
	if err := h.Right.Open(ctx); err != nil {
		return err
	}
	for {
		r, err := h.Right.Next()
		if err != nil {
			return err
		}
		if r == nil {
			break
		}
		h.build = append(h.build, *r)
	}
	h.index()
	if err := h.Left.Open(ctx); err != nil {
		return err
	}
	h.open = true
	return nil
}

// index builds the table over h.build: power-of-two size at most half
// full, Fibonacci hashing, linear probing.
func (h *HashJoin) index() {
	lg := bits.Len(uint(2*len(h.build))) + 1
	if lg < 4 {
		lg = 4
	}
	size := 1 << lg
	if cap(h.slots) >= size {
		h.slots = h.slots[:size]
		clear(h.slots)
	} else {
		h.slots = make([]hslot, size)
	}
	if cap(h.next) >= len(h.build) {
		h.next = h.next[:len(h.build)]
	} else {
		h.next = make([]int32, len(h.build))
	}
	h.shift = uint32(32 - lg)
	mask := uint32(size - 1)
	// Insert backwards so each chain lists its rows in build order.
	for i := len(h.build) - 1; i >= 0; i-- {
		k := h.build[i].NoradID
		for s := (k * 0x9E3779B1) >> h.shift; ; s = (s + 1) & mask {
			sl := &h.slots[s]
			if sl.head == 0 {
				sl.key, sl.head, h.next[i] = k, int32(i+1), 0
				break
			}
			if sl.key == k {
				h.next[i], sl.head = sl.head, int32(i+1)
				break
			}
		}
	}
}

func (h *HashJoin) lookup(k uint32) int32 {
	mask := uint32(len(h.slots) - 1)
	for s := (k * 0x9E3779B1) >> h.shift; ; s = (s + 1) & mask {
		sl := &h.slots[s]
		if sl.head == 0 || sl.key == k {
			return sl.head
		}
	}
}

// Next implements Operator.
func (h *HashJoin) Next() (*Joined, error) {
	if !h.open {
		return nil, ErrNotOpen
	}
	for h.chain == 0 {
		p, err := h.Left.Next()
		if p == nil || err != nil {
			return nil, err
		}
		h.probe, h.chain = p, h.lookup(p.NoradID)
	}
	i := h.chain - 1
	h.chain = h.next[i]
	h.out = Joined{Left: h.probe, Right: &h.build[i]}
	h.n++
	return &h.out, nil
}

// Close implements Operator.
func (h *HashJoin) Close() error {
	h.open, h.probe, h.chain = false, nil, 0
	err := h.Left.Close()
	if err2 := h.Right.Close(); err == nil {
		err = err2
	}
	return err
}
