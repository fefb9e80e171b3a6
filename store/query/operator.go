package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrUnsorted is returned by Merge and SortMergeJoin when an input yields a
// NORAD id smaller than the one before it.
var ErrUnsorted = errors.New("query: input not sorted by norad_id")

// ErrNotOpen is returned by Next on an operator that is not open.
var ErrNotOpen = errors.New("query: operator not open")

// Operator is a volcano (iterator model) operator producing rows of type T.
type Operator[T any] interface {
	Node
	// Open prepares the operator and opens its inputs; pipeline breakers
	// consume their input here. An operator may be opened again after Close.
	Open(ctx context.Context) error
	// Next returns the next row, or nil at the end. The row is valid until
	// the next call to Next or Close and must not be modified.
	Next() (*T, error)
	// Close releases the operator and closes its inputs. It is safe to call
	// more than once.
	Close() error
}

// Node is the plan-printing view of an operator.
type Node interface {
	// Describe is one line naming the operator and its parameters.
	Describe() string
	// Children are the operator's children.
	Children() []Node
	// Rows is the number of rows emitted since the last Open.
	Rows() int64
}

// Explain writes the plan tree rooted at n, one node per line with the rows
// it produced since it was opened.
func Explain(w io.Writer, n Node) error {
	return explain(w, n, "", "")
}

func explain(w io.Writer, n Node, first, rest string) error {
	if _, err := fmt.Fprintf(w, "%s%s  rows=%d\n", first, n.Describe(), n.Rows()); err != nil {
		return err
	}
	in := n.Children()
	for i, c := range in {
		f, r := rest+"├─ ", rest+"│  "
		if i == len(in)-1 {
			f, r = rest+"└─ ", rest+"   "
		}
		if err := explain(w, c, f, r); err != nil {
			return err
		}
	}
	return nil
}

// ExplainString returns Explain's output as a string.
func ExplainString(n Node) string {
	var b strings.Builder
	_ = Explain(&b, n)
	return b.String()
}

// Drain opens op, passes every row to fn (which must not keep the pointer)
// and closes op. It returns the number of rows.
func Drain[T any](ctx context.Context, op Operator[T], fn func(*T)) (int64, error) {
	if err := op.Open(ctx); err != nil {
		op.Close()
		return 0, err
	}
	var n int64
	for {
		r, err := op.Next()
		if err != nil {
			op.Close()
			return n, err
		}
		if r == nil {
			break
		}
		if fn != nil {
			fn(r)
		}
		n++
	}
	return n, op.Close()
}

// Collect runs op and returns copies of all its rows.
func Collect[T any](ctx context.Context, op Operator[T]) ([]T, error) {
	var out []T
	_, err := Drain(ctx, op, func(r *T) { out = append(out, *r) })
	return out, err
}
