package query

import (
	"context"
	"fmt"
	"sort"

	"github.com/meridian-ops/meridian/store/tle"
)

// Source is what a storage snapshot offers the query layer: an ordered scan
// of a NORAD id range. The MVCC snapshot implements it (through
// DecodeCursor); SliceSource is the in-memory one.
type Source interface {
	// Scan returns a cursor over the rows whose NoradID is in r. The rows
	// come in the source's order (NORAD id order for a storage snapshot).
	Scan(ctx context.Context, r KeyRange) (Cursor, error)
}

// Cursor walks the rows of one Scan.
type Cursor interface {
	// Next returns the next row, or nil at the end. The row is valid until
	// the next call to Next or Close and must not be modified.
	Next() (*Row, error)
	Close() error
}

// SliceSource is a Source over rows in memory. Scans yield the rows in
// slice order; when Sorted is set (Rows sorted by NoradID) a scan starts at
// the range's first row by binary search and stops after its last.
// Many scans may run at once; Rows must not change meanwhile.
type SliceSource struct {
	Name   string
	Rows   []Row
	Sorted bool
}

// String returns the source's name for plan output.
func (s *SliceSource) String() string { return s.Name }

// Scan implements Source.
func (s *SliceSource) Scan(_ context.Context, r KeyRange) (Cursor, error) {
	c := &sliceCursor{rows: s.Rows, r: r, all: r == KeyRange{}}
	if s.Sorted && !c.all {
		c.i = sort.Search(len(s.Rows), func(i int) bool { return s.Rows[i].NoradID >= r.From })
		hi := r.hi()
		end := sort.Search(len(s.Rows), func(i int) bool { return s.Rows[i].NoradID > hi })
		c.rows, c.all = s.Rows[:end], true
	}
	return c, nil
}

type sliceCursor struct {
	rows []Row
	i    int
	r    KeyRange
	all  bool // every row of rows[i:] is in range
}

func (c *sliceCursor) Next() (*Row, error) {
	for c.i < len(c.rows) {
		r := &c.rows[c.i]
		c.i++
		if c.all || c.r.Contains(r.NoradID) {
			return r, nil
		}
	}
	return nil, nil
}

func (c *sliceCursor) Close() error { c.rows = nil; return nil }

// RecordIterator is the shape of a storage iterator that yields encoded
// tle.Records (82 bytes each, see store/tle) in key order.
type RecordIterator interface {
	// Next returns the next encoded record, or nil at the end. The slice is
	// only read before the following call.
	Next() ([]byte, error)
	Close() error
}

// DecodeCursor adapts a storage iterator to a Cursor, tagging every row
// with src. A value that is not a valid record fails Next with an error
// wrapping tle.ErrRecordSize.
func DecodeCursor(it RecordIterator, src SourceInfo) Cursor {
	return &decodeCursor{it: it, src: src}
}

type decodeCursor struct {
	it  RecordIterator
	src SourceInfo
	rec tle.Record
	row Row
}

func (c *decodeCursor) Next() (*Row, error) {
	b, err := c.it.Next()
	if err != nil || b == nil {
		return nil, err
	}
	if err := c.rec.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("query: decode %s record: %w", c.src.Name, err)
	}
	c.row = NewRow(&c.rec, c.src.ID, c.src.Priority)
	return &c.row, nil
}

func (c *decodeCursor) Close() error { return c.it.Close() }
