package mvcc

import (
	"bytes"
	"context"
	"fmt"
)

type pending struct {
	value []byte
	del   bool
}

// Txn is a snapshot-isolated read-write transaction: it reads at its read
// timestamp (seeing its own writes), buffers writes, and at Commit fails
// with ErrConflict if another transaction committed a write to any key it
// writes after its read timestamp. Used by one goroutine at a time.
type Txn struct {
	snap   *Snapshot
	writes map[string]pending
	done   bool
}

// ReadTS returns the transaction's read timestamp.
func (t *Txn) ReadTS() uint64 { return t.snap.ts }

// Get returns key's value as the transaction sees it (valid until the
// next call on t), or ErrNotFound.
func (t *Txn) Get(ctx context.Context, key []byte) ([]byte, error) {
	if t.done {
		return nil, ErrTxnDone
	}
	if w, ok := t.writes[string(key)]; ok {
		if w.del {
			return nil, ErrNotFound
		}
		return w.value, nil
	}
	v, _, err := t.snap.Get(ctx, key)
	return v, err
}

// Put buffers key = value (both copied).
func (t *Txn) Put(key, value []byte) {
	t.writes[string(key)] = pending{value: bytes.Clone(value)}
}

// Delete buffers a delete of key.
func (t *Txn) Delete(key []byte) { t.writes[string(key)] = pending{del: true} }

// Writes returns how many keys the transaction writes.
func (t *Txn) Writes() int { return len(t.writes) }

// Commit makes the writes durable and visible at a new commit timestamp,
// which it returns, or fails with ErrConflict. A read-only transaction
// commits trivially at its read timestamp. Either way the transaction ends.
func (t *Txn) Commit(ctx context.Context) (uint64, error) {
	if t.done {
		return 0, ErrTxnDone
	}
	t.done = true
	defer t.snap.Close()
	if len(t.writes) == 0 {
		return t.snap.ts, nil
	}
	ts, err := t.snap.db.commit(ctx, t.snap.ts, t.writes)
	if err != nil {
		return 0, fmt.Errorf("mvcc: commit (read ts %d): %w", t.snap.ts, err)
	}
	return ts, nil
}

// Rollback abandons the transaction; safe after Commit.
func (t *Txn) Rollback() {
	if !t.done {
		t.done = true
		_ = t.snap.Close()
	}
}
