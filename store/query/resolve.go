package query

import (
	"context"
	"fmt"
	"sort"
)

// ResolveStats are the conflict figures of one Resolve run.
type ResolveStats struct {
	Objects      int64      // NORAD ids emitted (one winner each)
	Conflicts    int64      // objects reported by more than one row
	Superseded   int64      // rows that lost to a newer (or higher-priority) row
	PriorityTies int64      // conflicts whose newest epoch was shared, decided by priority
	Wins         [256]int64 // winners per SourceID
}

// Resolve is the catalog merge's group-by: over Input sorted by NORAD id
// (typically a Merge of the sources) it emits one row per id, the one with
// the newest epoch, equal epochs going to the higher Priority and a full tie
// to the first row. It counts the conflicts it resolved (Stats).
type Resolve struct {
	Input Operator[Row]

	best    Row
	pending *Row // first row of the next group, owned by Input
	done    bool
	open    bool
	stats   ResolveStats
}

// Describe implements Node.
func (g *Resolve) Describe() string {
	return "Resolve group by norad_id: newest epoch, then source priority"
}

// Children implements Node.
func (g *Resolve) Children() []Node { return []Node{g.Input} }

// Rows implements Node.
func (g *Resolve) Rows() int64 { return g.stats.Objects }

// Stats returns the conflict figures since Open.
func (g *Resolve) Stats() ResolveStats { return g.stats }

// Open implements Operator.
func (g *Resolve) Open(ctx context.Context) error {
	g.pending, g.done, g.stats, g.open = nil, false, ResolveStats{}, false
	if err := g.Input.Open(ctx); err != nil {
		return err
	}
	g.open = true
	return nil
}

// Next implements Operator.
func (g *Resolve) Next() (*Row, error) {
	if !g.open {
		return nil, ErrNotOpen
	}
	if g.done {
		return nil, nil
	}
	r := g.pending
	g.pending = nil
	if r == nil {
		var err error
		if r, err = g.Input.Next(); err != nil {
			return nil, err
		}
		if r == nil {
			g.done = true
			return nil, nil
		}
	}
	g.best = *r
	var size, sameEpoch int64 = 1, 0
	for {
		r, err := g.Input.Next()
		if err != nil {
			return nil, err
		}
		if r == nil {
			g.done = true
			break
		}
		if r.NoradID != g.best.NoradID {
			if r.NoradID < g.best.NoradID {
				return nil, fmt.Errorf("%w: resolve input went from %d to %d", ErrUnsorted, g.best.NoradID, r.NoradID)
			}
			g.pending = r
			break
		}
		size++
		switch {
		case r.Epoch > g.best.Epoch:
			g.best, sameEpoch = *r, 0
		case r.Epoch == g.best.Epoch:
			sameEpoch++
			if r.Priority > g.best.Priority {
				g.best = *r
			}
		}
	}
	s := &g.stats
	s.Objects++
	s.Wins[g.best.Source]++
	if size > 1 {
		s.Conflicts++
		s.Superseded += size - 1
		if sameEpoch > 0 {
			s.PriorityTies++
		}
	}
	return &g.best, nil
}

// Close implements Operator.
func (g *Resolve) Close() error {
	g.open, g.pending = false, nil
	return g.Input.Close()
}

// CatalogMerge returns the course's merge plan over sources sorted by NORAD
// id: Resolve(Merge(SeqScan(source)...)).
func CatalogMerge(sources ...Source) *Resolve {
	ins := make([]Operator[Row], len(sources))
	for i, s := range sources {
		ins[i] = &SeqScan{Src: s}
	}
	return &Resolve{Input: &Merge{Inputs: ins}}
}

// NestedLoopMerge is the ad-hoc catalog merge the query engine replaces,
// kept as the course's baseline and as a reference: an anti-join of all
// sources' rows against all of them by nested loops, keeping the rows that
// no newer (or equal-epoch, higher-priority) row beats, the first of any
// full tie. O((Σ|source|)²) comparisons; use it on small sources. The
// result is in NORAD id order, as Resolve's. It also returns the number of
// comparisons made.
func NestedLoopMerge(ctx context.Context, sources ...Source) ([]Row, int64, error) {
	scans := func() []Operator[Row] {
		ins := make([]Operator[Row], len(sources))
		for i, s := range sources {
			ins[i] = &SeqScan{Src: s}
		}
		return ins
	}
	nl := &NestedLoopJoin{
		Left:  &Concat[Row]{Inputs: scans()},
		Right: &Concat[Row]{Inputs: scans()},
		On:    func(l, r *Row) bool { return r.NoradID == l.NoradID && Newer(r, l) },
		Anti:  true,
	}
	var out []Row
	seen := make(map[uint32]bool)
	if _, err := Drain(ctx, Operator[Joined](nl), func(j *Joined) {
		if !seen[j.Left.NoradID] {
			seen[j.Left.NoradID] = true
			out = append(out, *j.Left)
		}
	}); err != nil {
		return nil, nl.Comparisons(), err
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].NoradID < out[b].NoradID })
	return out, nl.Comparisons(), nil
}
