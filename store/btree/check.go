package btree

import (
	"context"
	"fmt"
)

// Check walks every node and verifies the tree's invariants: every page is a
// valid node at the level its parent implies (so all leaves are at one
// depth), keys are strictly increasing and within their parent's separator
// bounds, no page is reachable twice, the leaf chain links exactly the
// leaves in key order in both directions, and the key and node counts match
// the meta page.
func (t *Tree) Check(ctx context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := checker{t: t, seen: map[uint32]bool{}}
	if err := c.walk(ctx, t.root, t.height-1, 0, 0, false); err != nil {
		return err
	}
	if c.keys != t.count || c.nleaves != t.leaves || c.ninners != t.inners {
		return fmt.Errorf("%w: found %d keys, %d leaves, %d internal; meta says %d, %d, %d",
			ErrCorrupt, c.keys, c.nleaves, c.ninners, t.count, t.leaves, t.inners)
	}
	// Leaf chain, both directions, against the in-order leaf list.
	for i, id := range c.order {
		f, nd, err := t.fetch(ctx, id, 0)
		if err != nil {
			return err
		}
		next, prev := nd.Next(), nd.Prev()
		t.pool.Unpin(f, false)
		wantNext, wantPrev := uint32(0), uint32(0)
		if i+1 < len(c.order) {
			wantNext = c.order[i+1]
		}
		if i > 0 {
			wantPrev = c.order[i-1]
		}
		if next != wantNext || prev != wantPrev {
			return fmt.Errorf("%w: leaf %d links next=%d prev=%d, want %d and %d", ErrCorrupt, id, next, prev, wantNext, wantPrev)
		}
	}
	return nil
}

type checker struct {
	t                *Tree
	seen             map[uint32]bool
	order            []uint32
	keys             uint64
	nleaves, ninners uint32
}

// walk checks the subtree at id, whose keys must lie in [lo, hi) (hi
// unbounded when !hasHi).
func (c *checker) walk(ctx context.Context, id uint32, level int, lo, hi uint32, hasHi bool) error {
	if c.seen[id] {
		return fmt.Errorf("%w: page %d reachable twice", ErrCorrupt, id)
	}
	c.seen[id] = true
	f, nd, err := c.t.fetch(ctx, id, level)
	if err != nil {
		return err
	}
	n := nd.n
	keys := make([]uint32, n)
	for i := range n {
		keys[i] = nd.Key(i)
	}
	var kids []uint32
	if level > 0 {
		kids = make([]uint32, n+1)
		for i := range kids {
			kids[i] = nd.Child(i)
		}
	}
	c.t.pool.Unpin(f, false)
	for i, k := range keys {
		if k < lo || (hasHi && k >= hi) {
			return fmt.Errorf("%w: page %d key %d outside [%d,%d)", ErrCorrupt, id, k, lo, hi)
		}
		if i > 0 && k <= keys[i-1] {
			return fmt.Errorf("%w: page %d keys %d, %d out of order", ErrCorrupt, id, keys[i-1], k)
		}
	}
	if level == 0 {
		c.order = append(c.order, id)
		c.keys += uint64(n)
		c.nleaves++
		return nil
	}
	if n == 0 {
		return fmt.Errorf("%w: internal page %d has no keys", ErrCorrupt, id)
	}
	c.ninners++
	for i, kid := range kids {
		clo, chi, chas := lo, hi, hasHi
		if i > 0 {
			clo = keys[i-1]
		}
		if i < n {
			chi, chas = keys[i], true
		}
		if err := c.walk(ctx, kid, level-1, clo, chi, chas); err != nil {
			return err
		}
	}
	return nil
}
