package query

import (
	"context"
	"fmt"
)

// BatchSize is the number of rows in a full Batch.
const BatchSize = 1024

// Batch is up to BatchSize rows in columnar form: one slice per column,
// all Len long. Sel is the selection vector: the ascending indices of the
// rows still selected, or nil when all Len rows are. Filters narrow Sel
// instead of copying rows.
type Batch struct {
	Len          int
	NoradID      []uint32
	Epoch        []float64 // ordering epoch, as Row.Epoch
	Inclination  []float64
	MeanMotion   []float64
	Eccentricity []float64
	Source       []SourceID
	Sel          []uint16
}

// Selected is the number of selected rows.
func (b *Batch) Selected() int {
	if b.Sel == nil {
		return b.Len
	}
	return len(b.Sel)
}

// ForEach calls fn with the index of every selected row, in order.
func (b *Batch) ForEach(fn func(i int)) {
	if b.Sel == nil {
		for i := 0; i < b.Len; i++ {
			fn(i)
		}
		return
	}
	for _, i := range b.Sel {
		fn(int(i))
	}
}

// Column names a float64 column of a Batch.
type Column uint8

// The float64 columns a VecPredicate can test.
const (
	ColEpoch Column = iota
	ColInclination
	ColMeanMotion
	ColEccentricity
)

var columnNames = [...]string{"epoch", "inclination", "mean_motion", "eccentricity"}

func (c Column) String() string {
	if int(c) < len(columnNames) {
		return columnNames[c]
	}
	return fmt.Sprintf("column(%d)", c)
}

// Float64s returns column c of the batch.
func (b *Batch) Float64s(c Column) []float64 {
	switch c {
	case ColEpoch:
		return b.Epoch
	case ColInclination:
		return b.Inclination
	case ColMeanMotion:
		return b.MeanMotion
	default:
		return b.Eccentricity
	}
}

// VecOperator is a vectorized operator: like Operator, but a call yields a
// Batch. A Batch is valid until the next NextBatch or Close; consumers may
// narrow its Sel but not change its columns.
type VecOperator interface {
	Node
	Open(ctx context.Context) error
	// NextBatch returns the next batch with at least one selected row, or
	// nil at the end.
	NextBatch() (*Batch, error)
	Close() error
}

// Columns is a table stored column-wise, the layout a ColumnScan reads.
type Columns struct {
	Name         string
	NoradID      []uint32
	Epoch        []float64
	Inclination  []float64
	MeanMotion   []float64
	Eccentricity []float64
	Source       []SourceID
}

// ColumnsOf transposes rows into a Columns table.
func ColumnsOf(name string, rows []Row) *Columns {
	c := &Columns{Name: name,
		NoradID: make([]uint32, len(rows)), Epoch: make([]float64, len(rows)),
		Inclination: make([]float64, len(rows)), MeanMotion: make([]float64, len(rows)),
		Eccentricity: make([]float64, len(rows)), Source: make([]SourceID, len(rows))}
	for i := range rows {
		r := &rows[i]
		c.NoradID[i], c.Epoch[i], c.Source[i] = r.NoradID, r.Epoch, r.Source
		c.Inclination[i], c.MeanMotion[i], c.Eccentricity[i] = r.Rec.Inclination, r.Rec.MeanMotion, r.Rec.Eccentricity
	}
	return c
}

// ColumnScan yields a Columns table as batches that are views into its
// slices: no copying.
type ColumnScan struct {
	Cols *Columns

	ctx  context.Context
	off  int
	b    Batch
	open bool
	n    int64
}

// Describe implements Node.
func (s *ColumnScan) Describe() string {
	return fmt.Sprintf("ColumnScan %s (batches of %d)", s.Cols.Name, BatchSize)
}

// Children implements Node.
func (s *ColumnScan) Children() []Node { return nil }

// Rows implements Node.
func (s *ColumnScan) Rows() int64 { return s.n }

// Open implements VecOperator.
func (s *ColumnScan) Open(ctx context.Context) error {
	s.ctx, s.off, s.n, s.open = ctx, 0, 0, true
	return nil
}

// NextBatch implements VecOperator.
func (s *ColumnScan) NextBatch() (*Batch, error) {
	if !s.open {
		return nil, ErrNotOpen
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	c := s.Cols
	lo := s.off
	if lo >= len(c.NoradID) {
		return nil, nil
	}
	hi := min(lo+BatchSize, len(c.NoradID))
	s.off = hi
	s.b = Batch{Len: hi - lo, NoradID: c.NoradID[lo:hi], Epoch: c.Epoch[lo:hi],
		Inclination: c.Inclination[lo:hi], MeanMotion: c.MeanMotion[lo:hi],
		Eccentricity: c.Eccentricity[lo:hi], Source: c.Source[lo:hi]}
	s.n += int64(hi - lo)
	return &s.b, nil
}

// Close implements VecOperator.
func (s *ColumnScan) Close() error { s.open = false; return nil }

// VecScan reads a row Source and transposes it into reused batches, for
// sources stored row-wise (the LSM).
type VecScan struct {
	Src   Source
	Range KeyRange

	ctx  context.Context
	cur  Cursor
	b    Batch
	cols struct {
		id   [BatchSize]uint32
		f    [4][BatchSize]float64
		src  [BatchSize]SourceID
		init bool
	}
	n int64
}

// Describe implements Node.
func (s *VecScan) Describe() string {
	return fmt.Sprintf("VecScan %v (row source, batches of %d)", s.Src, BatchSize)
}

// Children implements Node.
func (s *VecScan) Children() []Node { return nil }

// Rows implements Node.
func (s *VecScan) Rows() int64 { return s.n }

// Open implements VecOperator.
func (s *VecScan) Open(ctx context.Context) error {
	s.Close()
	c, err := s.Src.Scan(ctx, s.Range)
	if err != nil {
		return fmt.Errorf("query: scan %v: %w", s.Src, err)
	}
	s.ctx, s.cur, s.n = ctx, c, 0
	return nil
}

// NextBatch implements VecOperator.
func (s *VecScan) NextBatch() (*Batch, error) {
	if s.cur == nil {
		return nil, ErrNotOpen
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	c := &s.cols
	n := 0
	for n < BatchSize {
		r, err := s.cur.Next()
		if err != nil {
			return nil, err
		}
		if r == nil {
			break
		}
		c.id[n], c.src[n] = r.NoradID, r.Source
		c.f[ColEpoch][n], c.f[ColInclination][n] = r.Epoch, r.Rec.Inclination
		c.f[ColMeanMotion][n], c.f[ColEccentricity][n] = r.Rec.MeanMotion, r.Rec.Eccentricity
		n++
	}
	if n == 0 {
		return nil, nil
	}
	s.b = Batch{Len: n, NoradID: c.id[:n], Epoch: c.f[ColEpoch][:n],
		Inclination: c.f[ColInclination][:n], MeanMotion: c.f[ColMeanMotion][:n],
		Eccentricity: c.f[ColEccentricity][:n], Source: c.src[:n]}
	s.n += int64(n)
	return &s.b, nil
}

// Close implements VecOperator.
func (s *VecScan) Close() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

// VecPredicate evaluates a condition over a batch: it writes to out (which
// has room for BatchSize indices) the indices, taken from sel (or 0..Len-1
// when sel is nil), of the rows that pass, and returns that prefix of out.
type VecPredicate func(b *Batch, sel, out []uint16) []uint16

// Greater selects rows whose column c exceeds v.
func Greater(c Column, v float64) VecPredicate {
	return func(b *Batch, sel, out []uint16) []uint16 {
		return selectGreater(b.Float64s(c)[:b.Len], v, sel, out)
	}
}

// Less selects rows whose column c is below v.
func Less(c Column, v float64) VecPredicate {
	return func(b *Batch, sel, out []uint16) []uint16 {
		return selectLess(b.Float64s(c)[:b.Len], v, sel, out)
	}
}

// selectGreater is the filter kernel: branch-free, it always writes the
// index and advances only on a match. It is kept out of line so that it is
// compiled once with b2i inlined: inlined into a caller's copy of the
// Greater closure, b2i stayed a call and the loop ran 8x slower.
//
//go:noinline
func selectGreater(xs []float64, v float64, sel, out []uint16) []uint16 {
	out = out[:BatchSize]
	k := 0
	if sel == nil {
		for i, x := range xs {
			out[k&(BatchSize-1)] = uint16(i)
			k += b2i(x > v)
		}
	} else {
		for _, i := range sel {
			out[k&(BatchSize-1)] = i
			k += b2i(xs[i] > v)
		}
	}
	return out[:k]
}

// selectLess is selectGreater's mirror.
//
//go:noinline
func selectLess(xs []float64, v float64, sel, out []uint16) []uint16 {
	out = out[:BatchSize]
	k := 0
	if sel == nil {
		for i, x := range xs {
			out[k&(BatchSize-1)] = uint16(i)
			k += b2i(x < v)
		}
	} else {
		for _, i := range sel {
			out[k&(BatchSize-1)] = i
			k += b2i(xs[i] < v)
		}
	}
	return out[:k]
}

// b2i compiles to a SETcc, keeping the filter loops free of branches.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// VecFilter narrows each input batch's selection vector with Pred,
// skipping batches where nothing is left.
type VecFilter struct {
	Input VecOperator
	Pred  VecPredicate
	Label string // the predicate, for Explain

	sel [BatchSize]uint16
	n   int64
}

// Describe implements Node.
func (f *VecFilter) Describe() string { return "VecFilter " + f.Label + " (selection vector)" }

// Children implements Node.
func (f *VecFilter) Children() []Node { return []Node{f.Input} }

// Rows implements Node.
func (f *VecFilter) Rows() int64 { return f.n }

// Open implements VecOperator.
func (f *VecFilter) Open(ctx context.Context) error { f.n = 0; return f.Input.Open(ctx) }

// NextBatch implements VecOperator.
func (f *VecFilter) NextBatch() (*Batch, error) {
	for {
		b, err := f.Input.NextBatch()
		if b == nil || err != nil {
			return nil, err
		}
		sel := f.Pred(b, b.Sel, f.sel[:])
		if len(sel) == 0 {
			continue
		}
		b.Sel = sel
		f.n += int64(len(sel))
		return b, nil
	}
}

// Close implements VecOperator.
func (f *VecFilter) Close() error { return f.Input.Close() }

// DrainBatches opens op, passes every batch to fn and closes op. It
// returns the number of selected rows.
func DrainBatches(ctx context.Context, op VecOperator, fn func(*Batch)) (int64, error) {
	if err := op.Open(ctx); err != nil {
		op.Close()
		return 0, err
	}
	var n int64
	for {
		b, err := op.NextBatch()
		if err != nil {
			op.Close()
			return n, err
		}
		if b == nil {
			break
		}
		if fn != nil {
			fn(b)
		}
		n += int64(b.Selected())
	}
	return n, op.Close()
}
