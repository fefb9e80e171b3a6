package query

import (
	"context"
	"fmt"
)

// SortMergeJoin is the equi-join on NORAD id of two inputs already sorted
// by it: one linear pass, buffering only the right rows of the current key
// (so duplicates on both sides give their cross product). Output is in key
// order, left rows in left order, each with its right matches in right
// order. An input that goes backwards fails with ErrUnsorted.
type SortMergeJoin struct {
	Left, Right Operator[Row]

	l, r       *Row   // current rows, owned by the inputs
	lKey, rKey uint32 // last ids seen, for the sortedness check
	group      []Row  // right rows with id gKey
	gKey       uint32
	hasGroup   bool
	gi         int
	out        Joined
	open       bool
	n          int64
}

// Describe implements Node.
func (j *SortMergeJoin) Describe() string { return "SortMergeJoin on norad_id (presorted)" }

// Children implements Node.
func (j *SortMergeJoin) Children() []Node { return []Node{j.Left, j.Right} }

// Rows implements Node.
func (j *SortMergeJoin) Rows() int64 { return j.n }

// Open implements Operator.
func (j *SortMergeJoin) Open(ctx context.Context) error {
	j.l, j.r, j.lKey, j.rKey, j.group, j.hasGroup, j.gi, j.n, j.open =
		nil, nil, 0, 0, j.group[:0], false, 0, 0, false
	if err := j.Left.Open(ctx); err != nil {
		return err
	}
	if err := j.Right.Open(ctx); err != nil {
		return err
	}
	j.open = true
	return j.advanceRight()
}

func (j *SortMergeJoin) advanceRight() error {
	r, err := j.Right.Next()
	if err != nil {
		return err
	}
	if r != nil {
		if r.NoradID < j.rKey {
			return fmt.Errorf("%w: right input went from %d to %d", ErrUnsorted, j.rKey, r.NoradID)
		}
		j.rKey = r.NoradID
	}
	j.r = r
	return nil
}

// Next implements Operator.
func (j *SortMergeJoin) Next() (*Joined, error) {
	if !j.open {
		return nil, ErrNotOpen
	}
	for {
		if j.l == nil {
			l, err := j.Left.Next()
			if l == nil || err != nil {
				return nil, err
			}
			if l.NoradID < j.lKey {
				return nil, fmt.Errorf("%w: left input went from %d to %d", ErrUnsorted, j.lKey, l.NoradID)
			}
			j.l, j.lKey, j.gi = l, l.NoradID, 0
		}
		k := j.l.NoradID
		if j.hasGroup && k == j.gKey {
			if j.gi < len(j.group) {
				j.out = Joined{Left: j.l, Right: &j.group[j.gi]}
				j.gi++
				j.n++
				return &j.out, nil
			}
			j.l = nil
			continue
		}
		for j.r != nil && j.r.NoradID < k {
			if err := j.advanceRight(); err != nil {
				return nil, err
			}
		}
		if j.r == nil {
			return nil, nil // no right rows left to match
		}
		if j.r.NoradID > k {
			j.l = nil
			continue
		}
		j.group, j.gKey, j.hasGroup, j.gi = j.group[:0], k, true, 0
		for j.r != nil && j.r.NoradID == k {
			j.group = append(j.group, *j.r)
			if err := j.advanceRight(); err != nil {
				return nil, err
			}
		}
	}
}

// Close implements Operator.
func (j *SortMergeJoin) Close() error {
	j.open, j.l, j.r = false, nil, nil
	err := j.Left.Close()
	if err2 := j.Right.Close(); err == nil {
		err = err2
	}
	return err
}

// NestedLoopJoin is the baseline join: for every Left (outer) row it
// re-opens Right (inner) and scans it whole, emitting the pairs for which On
// holds (equal NORAD ids when On is nil). |Left| × |Right| comparisons.
// With Anti set it is the anti-join (NOT EXISTS): it emits each Left row
// that matched nothing, with a nil Right.
type NestedLoopJoin struct {
	Left, Right Operator[Row]
	On          func(l, r *Row) bool
	Anti        bool

	ctx         context.Context
	l           *Row
	matched     bool
	out         Joined
	open        bool
	n, compared int64
}

// Describe implements Node.
func (j *NestedLoopJoin) Describe() string {
	d := "NestedLoopJoin on predicate"
	if j.On == nil {
		d = "NestedLoopJoin on norad_id"
	}
	if j.Anti {
		d += " (anti)"
	}
	return d
}

// Children implements Node.
func (j *NestedLoopJoin) Children() []Node { return []Node{j.Left, j.Right} }

// Rows implements Node.
func (j *NestedLoopJoin) Rows() int64 { return j.n }

// Comparisons is the number of row pairs examined since Open.
func (j *NestedLoopJoin) Comparisons() int64 { return j.compared }

// Open implements Operator.
func (j *NestedLoopJoin) Open(ctx context.Context) error {
	j.ctx, j.l, j.n, j.compared, j.open = ctx, nil, 0, 0, false
	if err := j.Left.Open(ctx); err != nil {
		return err
	}
	j.open = true
	return nil
}

// Next implements Operator.
func (j *NestedLoopJoin) Next() (*Joined, error) {
	if !j.open {
		return nil, ErrNotOpen
	}
	for {
		if j.l == nil {
			l, err := j.Left.Next()
			if l == nil || err != nil {
				return nil, err
			}
			j.Right.Close()
			if err := j.Right.Open(j.ctx); err != nil {
				return nil, err
			}
			j.l, j.matched = l, false
		}
		r, err := j.Right.Next()
		if err != nil {
			return nil, err
		}
		if r == nil {
			l := j.l
			j.l = nil
			if j.Anti && !j.matched {
				j.out = Joined{Left: l}
				j.n++
				return &j.out, nil
			}
			continue
		}
		j.compared++
		if !(j.On == nil && r.NoradID == j.l.NoradID || j.On != nil && j.On(j.l, r)) {
			continue
		}
		j.matched = true
		if j.Anti {
			j.Right.Close() // one match settles it
			j.l = nil
			continue
		}
		j.out = Joined{Left: j.l, Right: r}
		j.n++
		return &j.out, nil
	}
}

// Close implements Operator.
func (j *NestedLoopJoin) Close() error {
	j.open, j.l = false, nil
	err := j.Left.Close()
	if err2 := j.Right.Close(); err == nil {
		err = err2
	}
	return err
}
