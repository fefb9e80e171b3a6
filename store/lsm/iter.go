package lsm

import (
	"bytes"
	"context"
	"sort"

	"github.com/meridian-ops/meridian/store/memtable"
	"github.com/meridian-ops/meridian/store/sstable"
)

// source is one sorted input of a merge: each key at most once.
type source interface {
	first() bool
	seekGE(key []byte) bool
	next() bool
	valid() bool
	entry() (key, value []byte, kind sstable.Kind)
	err() error
}

type memSource struct{ it *memtable.Iterator }

func (s *memSource) first() bool          { return s.it.First() }
func (s *memSource) seekGE(k []byte) bool { return s.it.SeekGE(k) }
func (s *memSource) next() bool           { return s.it.Next() }
func (s *memSource) valid() bool          { return s.it.Valid() }
func (s *memSource) err() error           { return nil }
func (s *memSource) entry() ([]byte, []byte, sstable.Kind) {
	return s.it.Key(), s.it.Value(), sstable.Kind(s.it.Kind())
}

type tableSource struct{ it *sstable.Iter }

func (s *tableSource) first() bool                           { return s.it.First() }
func (s *tableSource) seekGE(k []byte) bool                  { return s.it.SeekGE(k) }
func (s *tableSource) next() bool                            { return s.it.Next() }
func (s *tableSource) valid() bool                           { return s.it.Valid() }
func (s *tableSource) err() error                            { return s.it.Err() }
func (s *tableSource) entry() ([]byte, []byte, sstable.Kind) { return s.it.Entry() }

// levelSource concatenates the non-overlapping, sorted tables of a level,
// opening one table iterator at a time.
type levelSource struct {
	tables []*table
	i      int
	it     *sstable.Iter
	cur    *table // the table it iterates
	e      error
}

func newLevelSource(tables []*table) *levelSource {
	return &levelSource{tables: tables, i: len(tables)}
}

func (s *levelSource) open(i int, seek []byte) bool {
	for ; i < len(s.tables); i++ {
		// Re-seeking within the table already open reuses its iterator
		// (an MVCC snapshot seeks once per point read).
		if s.it == nil || s.i != i || s.cur != s.tables[i] {
			s.i, s.it, s.cur = i, s.tables[i].r.NewIter(), s.tables[i]
		}
		var ok bool
		if seek != nil {
			ok, seek = s.it.SeekGE(seek), nil
		} else {
			ok = s.it.First()
		}
		if ok {
			return true
		}
		if err := s.it.Err(); err != nil {
			s.e, s.i = err, len(s.tables)
			return false
		}
	}
	s.i = len(s.tables)
	return false
}

func (s *levelSource) first() bool { return s.open(0, nil) }
func (s *levelSource) seekGE(k []byte) bool {
	i := sort.Search(len(s.tables), func(i int) bool { return bytes.Compare(s.tables[i].meta.Largest, k) >= 0 })
	return s.open(i, k)
}
func (s *levelSource) next() bool {
	if !s.valid() {
		return false
	}
	if s.it.Next() {
		return true
	}
	if err := s.it.Err(); err != nil {
		s.e, s.i = err, len(s.tables)
		return false
	}
	return s.open(s.i+1, nil)
}
func (s *levelSource) valid() bool                           { return s.i < len(s.tables) && s.e == nil }
func (s *levelSource) err() error                            { return s.e }
func (s *levelSource) entry() ([]byte, []byte, sstable.Kind) { return s.it.Entry() }

// merge is a k-way merge of sources given newest first: for equal keys the
// lowest source index wins and the others are skipped.
type merge struct {
	srcs []source
	h    []int // heap of indices of valid sources
	keys [][]byte
}

func newMerge(srcs []source) *merge {
	return &merge{srcs: srcs, keys: make([][]byte, len(srcs))}
}

func (m *merge) less(a, b int) bool {
	if c := bytes.Compare(m.keys[a], m.keys[b]); c != 0 {
		return c < 0
	}
	return a < b
}

func (m *merge) down(i int) {
	n := len(m.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && m.less(m.h[r], m.h[l]) {
			j = r
		}
		if !m.less(m.h[j], m.h[i]) {
			return
		}
		m.h[i], m.h[j] = m.h[j], m.h[i]
		i = j
	}
}

func (m *merge) rebuild() bool {
	m.h = m.h[:0]
	for i, s := range m.srcs {
		if s.valid() {
			m.keys[i], _, _ = s.entry()
			m.h = append(m.h, i)
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return len(m.h) > 0
}

func (m *merge) first() bool {
	for _, s := range m.srcs {
		s.first()
	}
	return m.rebuild()
}

func (m *merge) seekGE(key []byte) bool {
	for _, s := range m.srcs {
		s.seekGE(key)
	}
	return m.rebuild()
}

func (m *merge) valid() bool { return len(m.h) > 0 }

// next advances past the current key in every source that holds it.
func (m *merge) next() bool {
	if len(m.h) == 0 {
		return false
	}
	cur := m.keys[m.h[0]]
	for len(m.h) > 0 && bytes.Equal(m.keys[m.h[0]], cur) {
		i := m.h[0]
		if m.srcs[i].next() {
			m.keys[i], _, _ = m.srcs[i].entry()
		} else {
			m.h[0] = m.h[len(m.h)-1]
			m.h = m.h[:len(m.h)-1]
		}
		if len(m.h) > 0 {
			m.down(0)
		}
	}
	return len(m.h) > 0
}

func (m *merge) key() []byte { return m.keys[m.h[0]] }

func (m *merge) value() []byte {
	_, v, _ := m.srcs[m.h[0]].entry()
	return v
}

func (m *merge) kind() sstable.Kind {
	_, _, k := m.srcs[m.h[0]].entry()
	return k
}

func (m *merge) err() error {
	for _, s := range m.srcs {
		if err := s.err(); err != nil {
			return err
		}
	}
	return nil
}

// IterOptions bound an Iterator to [LowerBound, UpperBound); nil means
// unbounded.
type IterOptions struct {
	LowerBound, UpperBound []byte
}

// Iterator walks live keys in order over a snapshot of the DB taken when
// it was created. Not safe for concurrent use; Close it when done.
type Iterator struct {
	db     *DB
	rs     readState
	m      *merge
	lo, hi []byte
	ok     bool
	e      error
}

// NewIter returns an unpositioned iterator; call First or SeekGE.
func (db *DB) NewIter(ctx context.Context, o *IterOptions) (*Iterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap := db.visible.Load()
	rs, err := db.acquire()
	if err != nil {
		return nil, err
	}
	srcs := []source{&memSource{rs.mem.Iter(snap)}}
	for i := len(rs.imms) - 1; i >= 0; i-- {
		srcs = append(srcs, &memSource{rs.imms[i].t.Iter(snap)})
	}
	l0 := rs.ver.levels[0]
	for i := len(l0) - 1; i >= 0; i-- {
		srcs = append(srcs, &tableSource{l0[i].r.NewIter()})
	}
	for _, lvl := range rs.ver.levels[1:] {
		if len(lvl) > 0 {
			srcs = append(srcs, newLevelSource(lvl))
		}
	}
	it := &Iterator{db: db, rs: rs, m: newMerge(srcs)}
	if o != nil {
		it.lo, it.hi = bytes.Clone(o.LowerBound), bytes.Clone(o.UpperBound)
	}
	return it, nil
}

// settle skips tombstones and applies the upper bound.
func (it *Iterator) settle(ok bool) bool {
	for ok && it.m.kind() == sstable.KindDelete {
		ok = it.m.next()
	}
	if ok && it.hi != nil && bytes.Compare(it.m.key(), it.hi) >= 0 {
		ok = false
	}
	if err := it.m.err(); err != nil {
		it.e, ok = err, false
	}
	it.ok = ok
	return ok
}

// First moves to the first key >= LowerBound.
func (it *Iterator) First() bool {
	if it.lo != nil {
		return it.settle(it.m.seekGE(it.lo))
	}
	return it.settle(it.m.first())
}

// SeekGE moves to the first key >= key (and >= LowerBound).
func (it *Iterator) SeekGE(key []byte) bool {
	if it.lo != nil && bytes.Compare(key, it.lo) < 0 {
		key = it.lo
	}
	return it.settle(it.m.seekGE(key))
}

// Next moves to the next live key.
func (it *Iterator) Next() bool {
	if !it.ok {
		return false
	}
	return it.settle(it.m.next())
}

// Valid reports whether the iterator is at a key.
func (it *Iterator) Valid() bool { return it.ok }

// Key returns the current key; valid until the next move.
func (it *Iterator) Key() []byte { return it.m.key() }

// Value returns the current value; valid until the next move.
func (it *Iterator) Value() []byte { return it.m.value() }

// Err returns the error that ended iteration, if any.
func (it *Iterator) Err() error { return it.e }

// Close releases the snapshot.
func (it *Iterator) Close() error {
	if it.rs.ver != nil {
		it.rs.ver.unref()
		it.rs.ver = nil
	}
	return it.e
}

// Scan calls fn for each live key in [from, to) in order (nil bounds are
// open). fn's slices are valid only during the call.
func (db *DB) Scan(ctx context.Context, from, to []byte, fn func(key, value []byte) error) error {
	it, err := db.NewIter(ctx, &IterOptions{LowerBound: from, UpperBound: to})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Err()
}
