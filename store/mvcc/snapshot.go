package mvcc

import (
	"bytes"
	"context"
	"fmt"

	"github.com/meridian-ops/meridian/store/lsm"
)

// Snapshot is a consistent read-only view at one timestamp: it sees the
// newest version of each key committed at or before TS, and nothing
// committed later. Writers never wait for it. A Snapshot is used by one
// goroutine at a time; Close it to let compaction collect what it pins.
type Snapshot struct {
	db     *DB
	ts     uint64
	it     *lsm.Iterator // lazily created, reused by Get
	buf    []byte
	closed bool
	reads  int64
}

// TS returns the snapshot's read timestamp.
func (s *Snapshot) TS() uint64 { return s.ts }

// Reads returns how many versions Get and iterators returned.
func (s *Snapshot) Reads() int64 { return s.reads }

// Close releases the snapshot. It is idempotent.
func (s *Snapshot) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.it != nil {
		err = s.it.Close()
		s.it = nil
	}
	s.db.unregister(s.ts)
	return err
}

// Get returns the value of key visible at the snapshot (valid until the
// next call on s), its commit timestamp, or ErrNotFound.
func (s *Snapshot) Get(ctx context.Context, key []byte) ([]byte, uint64, error) {
	if s.closed {
		return nil, 0, fmt.Errorf("mvcc: get on closed snapshot: %w", ErrTxnDone)
	}
	if s.it == nil {
		it, err := s.db.lsm.NewIter(ctx, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("mvcc: get: %w", err)
		}
		s.it = it
	}
	s.buf = AppendKey(s.buf[:0], key, s.ts)
	prefix := versionPrefix(s.buf)
	if !s.it.SeekGE(s.buf) {
		if err := s.it.Err(); err != nil {
			return nil, 0, fmt.Errorf("mvcc: get: %w", err)
		}
		return nil, 0, ErrNotFound
	}
	k := s.it.Key()
	if len(k) != len(s.buf) || !bytes.HasPrefix(k, prefix) {
		return nil, 0, ErrNotFound
	}
	v := s.it.Value()
	if len(v) == 0 || v[0] != kindPut {
		return nil, 0, ErrNotFound
	}
	s.reads++
	return v[1:], versionTS(k), nil
}

// NewIter returns an iterator over the keys in [lower, upper) (nil bounds
// are open) as of the snapshot, in key order, deletes hidden. Close it
// before the snapshot.
func (s *Snapshot) NewIter(ctx context.Context, lower, upper []byte) (*Iter, error) {
	if s.closed {
		return nil, fmt.Errorf("mvcc: iterate closed snapshot: %w", ErrTxnDone)
	}
	o := &lsm.IterOptions{LowerBound: appendPrefix(nil, lower), UpperBound: []byte{prefixData + 1}}
	if upper != nil {
		o.UpperBound = appendPrefix(nil, upper)
	}
	it, err := s.db.lsm.NewIter(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("mvcc: iterate: %w", err)
	}
	return &Iter{snap: s, it: it}, nil
}

// Iter walks the visible versions of a key range at a snapshot.
type Iter struct {
	snap    *Snapshot
	it      *lsm.Iterator
	started bool
	key     []byte // current user key
	val     []byte
	ts      uint64
	last    []byte // encoded prefix of the current key, to skip its older versions
	err     error
}

// Next moves to the next visible key; false at the end or on error.
func (i *Iter) Next() bool {
	var ok bool
	if !i.started {
		i.started, ok = true, i.it.First()
	} else {
		ok = i.it.Next()
	}
	for ; ok; ok = i.it.Next() {
		k := i.it.Key()
		if len(k) < 1+2+tsLen || k[0] != prefixData {
			continue
		}
		p := versionPrefix(k)
		if i.last != nil && bytes.Equal(p, i.last) {
			continue // an older version of the key just handled
		}
		if versionTS(k) > i.snap.ts {
			continue // committed after the snapshot
		}
		i.last = append(i.last[:0], p...)
		v := i.it.Value()
		if len(v) == 0 || v[0] != kindPut {
			continue // deleted as of the snapshot
		}
		var err error
		if i.key, i.ts, err = DecodeKey(i.key[:0], k); err != nil {
			i.err = fmt.Errorf("mvcc: %w", err)
			return false
		}
		i.val = v[1:]
		i.snap.reads++
		return true
	}
	if err := i.it.Err(); err != nil {
		i.err = fmt.Errorf("mvcc: iterate: %w", err)
	}
	return false
}

// Key returns the current user key; valid until the next move.
func (i *Iter) Key() []byte { return i.key }

// Value returns the current value; valid until the next move.
func (i *Iter) Value() []byte { return i.val }

// TS returns the current version's commit timestamp.
func (i *Iter) TS() uint64 { return i.ts }

// Err returns the error that ended iteration.
func (i *Iter) Err() error { return i.err }

// Close releases the iterator.
func (i *Iter) Close() error { return i.it.Close() }
