package query

import (
	"context"
	"fmt"
)

// Merge is the k-way merge of inputs sorted by NORAD id (the LSM merge
// iterator's algorithm): a min-heap holds each input's current row, Next
// emits the top, then replaces it with that input's next row and sifts it
// down, so a row costs one sift of log2(k) levels. Equal ids come out in
// input order. An input that goes backwards fails with ErrUnsorted.
type Merge struct {
	Inputs []Operator[Row]

	h       []mergeItem
	emitted bool // h[0] was handed out and its input must advance
	open    bool
	n       int64
}

// mergeItem orders by ord = key<<32 | input index: one integer compare
// (which the compiler turns into a conditional move) instead of two
// branchy ones.
type mergeItem struct {
	ord uint64
	row *Row
}

func order(key uint32, in int) uint64 { return uint64(key)<<32 | uint64(in) }

func (a *mergeItem) key() uint32 { return uint32(a.ord >> 32) }
func (a *mergeItem) in() int     { return int(uint32(a.ord)) }

// Describe implements Node.
func (m *Merge) Describe() string {
	return fmt.Sprintf("Merge %d-way min-heap on norad_id", len(m.Inputs))
}

// Children implements Node.
func (m *Merge) Children() []Node {
	ns := make([]Node, len(m.Inputs))
	for i, in := range m.Inputs {
		ns[i] = in
	}
	return ns
}

// Rows implements Node.
func (m *Merge) Rows() int64 { return m.n }

// Open implements Operator.
func (m *Merge) Open(ctx context.Context) error {
	m.h, m.emitted, m.open, m.n = m.h[:0], false, false, 0
	for i, in := range m.Inputs {
		if err := in.Open(ctx); err != nil {
			return err
		}
		r, err := in.Next()
		if err != nil {
			return err
		}
		if r != nil {
			m.h = append(m.h, mergeItem{ord: order(r.NoradID, i), row: r})
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	m.open = true
	return nil
}

// Next implements Operator.
func (m *Merge) Next() (*Row, error) {
	if !m.open {
		return nil, ErrNotOpen
	}
	if m.emitted {
		m.emitted = false
		top := &m.h[0]
		in := top.in()
		r, err := m.Inputs[in].Next()
		if err != nil {
			return nil, err
		}
		if r == nil {
			last := len(m.h) - 1
			m.h[0] = m.h[last]
			m.h = m.h[:last]
		} else {
			if r.NoradID < top.key() {
				return nil, fmt.Errorf("%w: input %d went from %d to %d", ErrUnsorted, in, top.key(), r.NoradID)
			}
			top.ord, top.row = order(r.NoradID, in), r
		}
		m.down(0)
	}
	if len(m.h) == 0 {
		return nil, nil
	}
	m.emitted = true
	m.n++
	return m.h[0].row, nil
}

// down restores the heap below i.
func (m *Merge) down(i int) {
	h := m.h
	n := len(h)
	if n < 2 {
		return
	}
	it := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].ord < h[c].ord {
			c = r
		}
		if h[c].ord >= it.ord {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = it
}

// Close implements Operator.
func (m *Merge) Close() error {
	m.open = false
	var first error
	for _, in := range m.Inputs {
		if err := in.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Check verifies the heap invariant; tests call it between Next calls.
func (m *Merge) Check() error {
	for i := 1; i < len(m.h); i++ {
		if p := (i - 1) / 2; m.h[i].ord < m.h[p].ord {
			return fmt.Errorf("query: merge heap: item %d (%d/%d) above parent %d (%d/%d)",
				i, m.h[i].key(), m.h[i].in(), p, m.h[p].key(), m.h[p].in())
		}
	}
	for i := range m.h {
		if m.h[i].row == nil || m.h[i].row.NoradID != m.h[i].key() {
			return fmt.Errorf("query: merge heap: item %d key %d does not match its row", i, m.h[i].key())
		}
	}
	return nil
}
