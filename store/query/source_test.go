package query

import (
	"context"
	"errors"
	"testing"

	"github.com/meridian-ops/meridian/store/tle"
)

// sliceIter is a RecordIterator over encoded values, the shape a storage
// snapshot iterator has.
type sliceIter struct {
	vals   [][]byte
	i      int
	closed bool
}

func (s *sliceIter) Next() ([]byte, error) {
	if s.i >= len(s.vals) {
		return nil, nil
	}
	s.i++
	return s.vals[s.i-1], nil
}

func (s *sliceIter) Close() error { s.closed = true; return nil }

// iterSource is a Source built on DecodeCursor, as the MVCC snapshot will be.
type iterSource struct {
	src  SourceInfo
	vals [][]byte
	last *sliceIter
}

func (s *iterSource) Scan(_ context.Context, r KeyRange) (Cursor, error) {
	var vals [][]byte
	for _, v := range s.vals {
		var rec tle.Record
		if rec.UnmarshalBinary(v) != nil || r.Contains(rec.NoradID) {
			vals = append(vals, v)
		}
	}
	s.last = &sliceIter{vals: vals}
	return DecodeCursor(s.last, s.src), nil
}

func TestDecodeCursorPlan(t *testing.T) {
	rows := Generate(CourseSources[2], 300, 7)
	src := &iterSource{src: CourseSources[2]}
	for i := range rows {
		b, _ := rows[i].Rec.MarshalBinary()
		src.vals = append(src.vals, b)
	}
	scan := &SeqScan{Src: src, Range: KeyRange{From: 101, To: 200}}
	got := mustCollect[Row](t, &Filter[Row]{Input: scan, Pred: func(r *Row) bool { return r.Rec.Inclination > 80 }})
	var want []Row
	for _, r := range rows[100:200] {
		if r.Rec.Inclination > 80 {
			want = append(want, r)
		}
	}
	equalRows(t, "decoded scan", got, want)
	if !src.last.closed {
		t.Fatal("Close did not reach the storage iterator")
	}
	src.vals = append(src.vals[:1], []byte("short"))
	_, err := Collect[Row](context.Background(), &SeqScan{Src: src})
	if !errors.Is(err, tle.ErrRecordSize) {
		t.Fatalf("bad record: got %v, want ErrRecordSize", err)
	}
}

// FuzzDecodeCursor feeds arbitrary values through a decoding scan: it must
// fail with ErrRecordSize or yield a row that re-encodes to the input.
func FuzzDecodeCursor(f *testing.F) {
	rows := Generate(CourseSources[0], 1, 1)
	good, _ := rows[0].Rec.MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add(make([]byte, tle.RecordSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := DecodeCursor(&sliceIter{vals: [][]byte{b}}, CourseSources[1])
		r, err := c.Next()
		if err != nil {
			if !errors.Is(err, tle.ErrRecordSize) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if r == nil {
			t.Fatal("no row and no error")
		}
		out, _ := r.Rec.MarshalBinary()
		if string(out) != string(b) {
			t.Fatal("decoded row does not re-encode to its input")
		}
		if r.Source != CourseSources[1].ID || r.Priority != CourseSources[1].Priority || r.NoradID != r.Rec.NoradID {
			t.Fatalf("row not tagged: %+v", r)
		}
	})
}
