package query

import (
	"context"
	"fmt"
	"sort"
)

// Filter passes the rows of Input for which Pred is true.
type Filter[T any] struct {
	Input Operator[T]
	Pred  func(*T) bool
	Label string // the predicate, for Explain

	n int64
}

// Describe implements Node.
func (f *Filter[T]) Describe() string { return "Filter " + f.Label }

// Children implements Node.
func (f *Filter[T]) Children() []Node { return []Node{f.Input} }

// Rows implements Node.
func (f *Filter[T]) Rows() int64 { return f.n }

// Open implements Operator.
func (f *Filter[T]) Open(ctx context.Context) error { f.n = 0; return f.Input.Open(ctx) }

// Next implements Operator.
func (f *Filter[T]) Next() (*T, error) {
	for {
		r, err := f.Input.Next()
		if r == nil || err != nil {
			return nil, err
		}
		if f.Pred(r) {
			f.n++
			return r, nil
		}
	}
}

// Close implements Operator.
func (f *Filter[T]) Close() error { return f.Input.Close() }

// Projection maps each row of Input through Fn into a reused Out buffer.
type Projection[In, Out any] struct {
	Input Operator[In]
	Fn    func(dst *Out, src *In)
	Label string // the projected columns, for Explain

	buf Out
	n   int64
}

// Describe implements Node.
func (p *Projection[In, Out]) Describe() string { return "Projection (" + p.Label + ")" }

// Children implements Node.
func (p *Projection[In, Out]) Children() []Node { return []Node{p.Input} }

// Rows implements Node.
func (p *Projection[In, Out]) Rows() int64 { return p.n }

// Open implements Operator.
func (p *Projection[In, Out]) Open(ctx context.Context) error {
	p.n = 0
	return p.Input.Open(ctx)
}

// Next implements Operator.
func (p *Projection[In, Out]) Next() (*Out, error) {
	r, err := p.Input.Next()
	if r == nil || err != nil {
		return nil, err
	}
	p.Fn(&p.buf, r)
	p.n++
	return &p.buf, nil
}

// Close implements Operator.
func (p *Projection[In, Out]) Close() error { return p.Input.Close() }

// Limit passes at most N rows of Input; a negative N is no limit.
type Limit[T any] struct {
	Input Operator[T]
	N     int64

	n int64
}

// Describe implements Node.
func (l *Limit[T]) Describe() string { return fmt.Sprintf("Limit %d", l.N) }

// Children implements Node.
func (l *Limit[T]) Children() []Node { return []Node{l.Input} }

// Rows implements Node.
func (l *Limit[T]) Rows() int64 { return l.n }

// Open implements Operator.
func (l *Limit[T]) Open(ctx context.Context) error { l.n = 0; return l.Input.Open(ctx) }

// Next implements Operator.
func (l *Limit[T]) Next() (*T, error) {
	if l.N >= 0 && l.n >= l.N {
		return nil, nil
	}
	r, err := l.Input.Next()
	if r != nil {
		l.n++
	}
	return r, err
}

// Close implements Operator.
func (l *Limit[T]) Close() error { return l.Input.Close() }

// Sort is a pipeline breaker: Open consumes Input into a reused buffer and
// sorts it stably by Cmp; Next then returns the rows in order.
type Sort[T any] struct {
	Input Operator[T]
	Cmp   func(a, b *T) int
	Label string // the sort key, for Explain

	buf  []T
	i    int
	open bool
	n    int64
}

// Describe implements Node.
func (s *Sort[T]) Describe() string { return "Sort by " + s.Label }

// Children implements Node.
func (s *Sort[T]) Children() []Node { return []Node{s.Input} }

// Rows implements Node.
func (s *Sort[T]) Rows() int64 { return s.n }

// Open implements Operator.
func (s *Sort[T]) Open(ctx context.Context) error {
	s.buf, s.i, s.n, s.open = s.buf[:0], 0, 0, false
	if err := s.Input.Open(ctx); err != nil {
		return err
	}
	for {
		r, err := s.Input.Next()
		if err != nil {
			return err
		}
		if r == nil {
			break
		}
		s.buf = append(s.buf, *r)
	}
	sort.Stable(sorter[T]{s.buf, s.Cmp})
	s.open = true
	return nil
}

// Next implements Operator.
func (s *Sort[T]) Next() (*T, error) {
	if !s.open {
		return nil, ErrNotOpen
	}
	if s.i >= len(s.buf) {
		return nil, nil
	}
	s.i++
	s.n++
	return &s.buf[s.i-1], nil
}

// Close implements Operator.
func (s *Sort[T]) Close() error {
	s.open = false
	return s.Input.Close()
}

// sorter compares rows in place; a func(a, b T) would copy both per call.
type sorter[T any] struct {
	rows []T
	cmp  func(a, b *T) int
}

func (s sorter[T]) Len() int           { return len(s.rows) }
func (s sorter[T]) Less(i, j int) bool { return s.cmp(&s.rows[i], &s.rows[j]) < 0 }
func (s sorter[T]) Swap(i, j int)      { s.rows[i], s.rows[j] = s.rows[j], s.rows[i] }

// Concat yields all rows of each input in turn (UNION ALL).
type Concat[T any] struct {
	Inputs []Operator[T]

	ctx  context.Context
	i    int
	open bool
	n    int64
}

// Describe implements Node.
func (c *Concat[T]) Describe() string { return fmt.Sprintf("Concat %d inputs", len(c.Inputs)) }

// Children implements Node.
func (c *Concat[T]) Children() []Node {
	ns := make([]Node, len(c.Inputs))
	for i, in := range c.Inputs {
		ns[i] = in
	}
	return ns
}

// Rows implements Node.
func (c *Concat[T]) Rows() int64 { return c.n }

// Open implements Operator. Inputs are opened one at a time, as reached.
func (c *Concat[T]) Open(ctx context.Context) error {
	c.Close()
	c.ctx, c.i, c.n = ctx, 0, 0
	if len(c.Inputs) > 0 {
		if err := c.Inputs[0].Open(ctx); err != nil {
			return err
		}
	}
	c.open = true
	return nil
}

// Next implements Operator.
func (c *Concat[T]) Next() (*T, error) {
	if !c.open {
		return nil, ErrNotOpen
	}
	for c.i < len(c.Inputs) {
		r, err := c.Inputs[c.i].Next()
		if err != nil {
			return nil, err
		}
		if r != nil {
			c.n++
			return r, nil
		}
		if err := c.Inputs[c.i].Close(); err != nil {
			return nil, err
		}
		c.i++
		if c.i < len(c.Inputs) {
			if err := c.Inputs[c.i].Open(c.ctx); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// Close implements Operator.
func (c *Concat[T]) Close() error {
	if !c.open {
		return nil
	}
	c.open = false
	if c.i < len(c.Inputs) {
		return c.Inputs[c.i].Close()
	}
	return nil
}
