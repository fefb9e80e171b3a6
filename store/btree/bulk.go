package btree

import (
	"context"
	"fmt"
	"iter"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
)

type levelEnt struct {
	id    uint32
	first uint32 // smallest key below this node
}

// BulkLoad fills an empty tree from seq, whose keys must be strictly
// increasing. Leaves are packed full and linked left to right; internal
// levels are then built bottom-up until one root remains.
//
// On ErrUnsorted or ErrValueSize the tree holds the pairs loaded before the
// offending one and is consistent. After an I/O error the tree's in-memory
// shape may not match its pages; discard it.
func (t *Tree) BulkLoad(ctx context.Context, seq iter.Seq2[uint32, []byte]) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count != 0 || t.height != 1 {
		return ErrNotEmpty
	}
	// The existing empty root leaf becomes the first leaf.
	f, nd, err := t.fetch(ctx, t.root, 0)
	if err != nil {
		return err
	}
	if nd.n != 0 {
		t.pool.Unpin(f, false)
		return fmt.Errorf("%w: empty tree has a non-empty root", ErrCorrupt)
	}
	leaves := []levelEnt{{id: f.ID()}}
	n, prev, loadErr := 0, uint32(0), error(nil)
	cur := f
	for k, v := range seq {
		if len(v) != t.lay.vsize {
			loadErr = fmt.Errorf("%w: key %d has %d bytes, tree holds %d", ErrValueSize, k, len(v), t.lay.vsize)
			break
		}
		if t.count > 0 && k <= prev {
			loadErr = fmt.Errorf("%w: key %d after %d", ErrUnsorted, k, prev)
			break
		}
		if n == t.lay.leafCap {
			if loadErr = ctx.Err(); loadErr != nil {
				break
			}
			nf, err := t.pool.NewPage(ctx, pagefile.TypeBTreeLeaf)
			if err != nil {
				loadErr = err
				break
			}
			initNode(nf.Data(), nf.ID(), 0)
			setNext(cur.Data(), nf.ID())
			setPrev(nf.Data(), cur.ID())
			t.pool.Unpin(cur, true)
			cur, n = nf, 0
			leaves = append(leaves, levelEnt{id: nf.ID(), first: k})
			t.leaves++
		}
		if n == 0 {
			leaves[len(leaves)-1].first = k
		}
		b := cur.Data()
		setKey(b, n, k)
		t.lay.setValue(b, n, v)
		n++
		setN(b, n)
		t.count++
		prev = k
	}
	t.pool.Unpin(cur, true)
	if err := t.buildInner(ctx, leaves); err != nil {
		return err
	}
	return loadErr
}

// buildInner stacks internal levels over the given leaves.
func (t *Tree) buildInner(ctx context.Context, ents []levelEnt) error {
	for level := 1; len(ents) > 1; level++ {
		// Spread children evenly so no node is left with a single child.
		groups := (len(ents) + innerCap) / (innerCap + 1)
		up := make([]levelEnt, 0, groups)
		for g, start := 0, 0; g < groups; g++ {
			size := len(ents) / groups
			if g < len(ents)%groups {
				size++
			}
			grp := ents[start : start+size]
			start += size
			f, err := t.pool.NewPage(ctx, pagefile.TypeBTreeInner)
			if err != nil {
				return err
			}
			t.fillGroup(f, level, grp)
			up = append(up, levelEnt{id: f.ID(), first: grp[0].first})
			t.pool.Unpin(f, true)
			t.inners++
		}
		ents = up
		t.height = level + 1
	}
	t.root = ents[0].id
	return nil
}

func (t *Tree) fillGroup(f *bufpool.Frame, level int, grp []levelEnt) {
	b := f.Data()
	initNode(b, f.ID(), level)
	for j, e := range grp {
		t.lay.setChild(b, j, e.id)
		if j > 0 {
			setKey(b, j-1, e.first)
		}
	}
	setN(b, len(grp)-1)
}
