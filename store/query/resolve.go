package query

import (
	"context"
	"fmt"
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
