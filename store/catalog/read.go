package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/query"
	"github.com/meridian-ops/meridian/store/tle"
)

// Entry is one object of the resolved catalog.
type Entry struct {
	Rec      tle.Record
	Source   string // the winning provider
	Name     string
	CommitTS uint64 // when this version was committed
}

// Snapshot is a consistent view of the whole catalog at one timestamp.
// Used by one goroutine at a time; Close it.
type Snapshot struct {
	c   *Catalog
	s   *mvcc.Snapshot
	key []byte
}

// Snapshot opens a view at asOf (0: now). Reads below the MVCC horizon fail
// with mvcc.ErrSnapshotTooOld.
func (c *Catalog) Snapshot(ctx context.Context, asOf uint64) (*Snapshot, error) {
	s, err := c.db.Snapshot(ctx, asOf)
	if err != nil {
		return nil, err
	}
	return &Snapshot{c: c, s: s}, nil
}

// TS returns the snapshot's read timestamp.
func (s *Snapshot) TS() uint64 { return s.s.TS() }

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.s.Close() }

// Get returns the resolved entry of id, or ErrNotFound.
func (s *Snapshot) Get(ctx context.Context, id uint32) (Entry, error) {
	var e Entry
	s.key = resolvedKey(s.key[:0], id)
	v, ts, err := s.s.Get(ctx, s.key)
	if err != nil {
		return e, err
	}
	if err := s.c.decodeResolved(&e, v); err != nil {
		return e, fmt.Errorf("catalog: object %d: %w", id, err)
	}
	e.CommitTS = ts
	return e, nil
}

func (c *Catalog) decodeResolved(e *Entry, v []byte) error {
	if len(v) < tle.RecordSize+1 {
		return fmt.Errorf("resolved entry of %d bytes: %w", len(v), tle.ErrRecordSize)
	}
	if err := e.Rec.UnmarshalBinary(v[:tle.RecordSize]); err != nil {
		return err
	}
	e.Source = c.SourceName(query.SourceID(v[tle.RecordSize]))
	e.Name = string(v[tle.RecordSize+1:])
	return nil
}

// Scan calls fn for each resolved entry with id in [from, to], in id order,
// until fn returns false or limit entries (0: no limit) were produced. It
// reports whether entries remained when limit stopped it.
func (s *Snapshot) Scan(ctx context.Context, from, to uint32, limit int, fn func(*Entry) bool) (more bool, err error) {
	lo := resolvedKey(nil, from)
	var hi []byte
	if to < math.MaxUint32 {
		hi = resolvedKey(nil, to+1)
	} else {
		hi = []byte{prefixResolved + 1}
	}
	it, err := s.s.NewIter(ctx, lo, hi)
	if err != nil {
		return false, err
	}
	defer it.Close()
	var e Entry
	n := 0
	for it.Next() {
		if limit > 0 && n == limit {
			return true, nil
		}
		if err := s.c.decodeResolved(&e, it.Value()); err != nil {
			return false, fmt.Errorf("catalog: scan: %w", err)
		}
		e.CommitTS = it.TS()
		n++
		if !fn(&e) {
			return false, it.Err()
		}
	}
	return false, it.Err()
}

// Source returns one provider's records at the snapshot as a query.Source
// (NORAD-id order), for the query layer's operators.
func (s *Snapshot) Source(name string) (query.Source, error) {
	info, err := s.c.Source(name)
	if err != nil {
		return nil, err
	}
	return &snapSource{s: s.s, info: info}, nil
}

// Resolved returns the resolved catalog at the snapshot as a query.Source.
func (s *Snapshot) Resolved() query.Source { return &snapSource{s: s.s, resolved: true, c: s.c} }

type snapSource struct {
	s        *mvcc.Snapshot
	info     query.SourceInfo
	resolved bool
	c        *Catalog
}

func (q *snapSource) String() string {
	if q.resolved {
		return "resolved catalog"
	}
	return q.info.Name
}

// Scan implements query.Source.
func (q *snapSource) Scan(ctx context.Context, r query.KeyRange) (query.Cursor, error) {
	var lo, hi []byte
	if q.resolved {
		lo = resolvedKey(nil, r.From)
		hi = []byte{prefixResolved + 1}
		if r.To != 0 && r.To < math.MaxUint32 {
			hi = resolvedKey(nil, r.To+1)
		}
	} else {
		lo = sourceKey(nil, q.info.ID, r.From)
		hi = []byte{prefixSource, byte(q.info.ID) + 1}
		if r.To != 0 && r.To < math.MaxUint32 {
			hi = sourceKey(nil, q.info.ID, r.To+1)
		}
	}
	it, err := q.s.NewIter(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	if q.resolved {
		return &resolvedCursor{it: it, c: q.c}, nil
	}
	return query.DecodeCursor(&recordIter{it: it}, q.info), nil
}

// recordIter adapts an mvcc.Iter to query.RecordIterator.
type recordIter struct{ it *mvcc.Iter }

func (r *recordIter) Next() ([]byte, error) {
	if r.it.Next() {
		return r.it.Value(), nil
	}
	return nil, r.it.Err()
}

func (r *recordIter) Close() error { return r.it.Close() }

// resolvedCursor yields resolved entries tagged with their winning source.
type resolvedCursor struct {
	it  *mvcc.Iter
	c   *Catalog
	rec tle.Record
	row query.Row
}

func (r *resolvedCursor) Next() (*query.Row, error) {
	if !r.it.Next() {
		return nil, r.it.Err()
	}
	v := r.it.Value()
	if len(v) < tle.RecordSize+1 {
		return nil, fmt.Errorf("catalog: resolved entry of %d bytes: %w", len(v), tle.ErrRecordSize)
	}
	if err := r.rec.UnmarshalBinary(v[:tle.RecordSize]); err != nil {
		return nil, err
	}
	src := r.c.byID[query.SourceID(v[tle.RecordSize])]
	r.row = query.NewRow(&r.rec, src.ID, src.Priority)
	return &r.row, nil
}

func (r *resolvedCursor) Close() error { return r.it.Close() }

// MergeResult is a catalog merge's outcome.
type MergeResult struct {
	RowsIn    int64
	Stats     query.ResolveStats
	Samples   []query.Row // the first n winners
	Winners   []query.Row // every winner, when asked for
	PlanTrace string
}

// Merge runs the course's k-way merge over every provider's records at the
// snapshot with newest-epoch conflict resolution, keeping the first
// samples winners (and all of them if keepAll).
func (s *Snapshot) Merge(ctx context.Context, samples int, keepAll bool) (*MergeResult, error) {
	srcs := make([]query.Source, len(s.c.sources))
	for i, info := range s.c.sources {
		srcs[i] = &snapSource{s: s.s, info: info}
	}
	plan := query.CatalogMerge(srcs...)
	if err := plan.Open(ctx); err != nil {
		return nil, err
	}
	defer plan.Close()
	res := &MergeResult{}
	for {
		r, err := plan.Next()
		if err != nil {
			return nil, fmt.Errorf("catalog: merge: %w", err)
		}
		if r == nil {
			break
		}
		if len(res.Samples) < samples {
			res.Samples = append(res.Samples, *r)
		}
		if keepAll {
			res.Winners = append(res.Winners, *r)
		}
	}
	res.Stats = plan.Stats()
	res.RowsIn = plan.Input.(*query.Merge).Rows()
	res.PlanTrace = query.ExplainString(plan)
	return res, nil
}

// Count returns the number of objects in the resolved catalog at the
// snapshot.
func (s *Snapshot) Count(ctx context.Context) (int, error) {
	n := 0
	_, err := s.Scan(ctx, 0, math.MaxUint32, 0, func(*Entry) bool { n++; return true })
	return n, err
}

// Candidates returns how many providers hold a record of id at the
// snapshot (the rows a merge chose among).
func (s *Snapshot) Candidates(ctx context.Context, id uint32) (int, error) {
	n := 0
	for _, src := range s.c.sources {
		s.key = sourceKey(s.key[:0], src.ID, id)
		_, _, err := s.s.Get(ctx, s.key)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, mvcc.ErrNotFound):
			return n, err
		}
	}
	return n, nil
}
