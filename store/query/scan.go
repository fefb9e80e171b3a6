package query

import (
	"context"
	"fmt"
)

// ctxCheckEvery is how many rows a scan produces between context checks.
const ctxCheckEvery = 1024

// SeqScan is the leaf row operator: it scans Range of Src (the whole
// source for the zero KeyRange). It checks the context every 1,024 rows.
type SeqScan struct {
	Src   Source
	Range KeyRange

	ctx context.Context
	cur Cursor
	n   int64
}

// Describe implements Node.
func (s *SeqScan) Describe() string {
	d := fmt.Sprintf("SeqScan %v", s.Src)
	if s.Range != (KeyRange{}) {
		d += fmt.Sprintf(" norad_id in [%d, %d]", s.Range.From, s.Range.hi())
	}
	return d
}

// Children implements Node.
func (s *SeqScan) Children() []Node { return nil }

// Rows implements Node.
func (s *SeqScan) Rows() int64 { return s.n }

// Open implements Operator.
func (s *SeqScan) Open(ctx context.Context) error {
	s.Close()
	c, err := s.Src.Scan(ctx, s.Range)
	if err != nil {
		return fmt.Errorf("query: scan %v: %w", s.Src, err)
	}
	s.ctx, s.cur, s.n = ctx, c, 0
	return nil
}

// Next implements Operator.
func (s *SeqScan) Next() (*Row, error) {
	if s.cur == nil {
		return nil, ErrNotOpen
	}
	if s.n%ctxCheckEvery == 0 {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
	}
	r, err := s.cur.Next()
	if r != nil {
		s.n++
	}
	return r, err
}

// Close implements Operator.
func (s *SeqScan) Close() error {
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}
