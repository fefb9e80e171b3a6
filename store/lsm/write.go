package lsm

import (
	"context"
	"fmt"
	"sync"

	"github.com/meridian-ops/meridian/store/memtable"
)

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// Put sets key to value durably (per the sync policy).
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	b := batchPool.Get().(*Batch)
	b.Put(key, value)
	_, err := db.Apply(ctx, b)
	b.Reset()
	batchPool.Put(b)
	return err
}

// Delete removes key durably (per the sync policy).
func (db *DB) Delete(ctx context.Context, key []byte) error {
	b := batchPool.Get().(*Batch)
	b.Delete(key)
	_, err := db.Apply(ctx, b)
	b.Reset()
	batchPool.Put(b)
	return err
}

// Apply writes b atomically and returns its LSN once it is durable per
// Options.Sync (SyncAlways: fsynced; SyncInterval: after the next periodic
// fsync; SyncNone: immediately). If ctx ends during the durability wait the
// batch is applied and may still become durable; the error says so.
func (db *DB) Apply(ctx context.Context, b *Batch) (uint64, error) {
	lsn, err := db.ApplyNoWait(ctx, b)
	if err != nil {
		return lsn, err
	}
	if err := db.wal.Sync(ctx, lsn); err != nil {
		return lsn, fmt.Errorf("lsm: batch %d applied but not confirmed durable: %w", lsn, err)
	}
	return lsn, nil
}

// ApplyNoWait writes b to the WAL buffer and the memtable and returns its
// LSN without waiting for durability; follow with WaitDurable.
func (db *DB) ApplyNoWait(ctx context.Context, b *Batch) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if b.Len() == 0 {
		return db.visible.Load(), nil
	}
	if err := db.makeRoom(ctx); err != nil {
		return 0, err
	}
	lsn, err := db.wal.Append(b.data)
	if err != nil {
		return 0, fmt.Errorf("lsm: WAL append: %w", err)
	}
	mem := db.mem
	walkBatch(b.data, func(kind memtable.Kind, k, v []byte) { mem.Add(k, lsn, kind, v) })
	db.visible.Store(lsn)
	db.st.batches.Add(1)
	db.st.entries.Add(int64(b.count))
	return lsn, nil
}

// WaitDurable blocks until lsn is durable per the sync policy (see Apply).
func (db *DB) WaitDurable(ctx context.Context, lsn uint64) error {
	return db.wal.Sync(ctx, lsn)
}

// SyncWAL fsyncs the WAL up to the last applied LSN, whatever the policy.
func (db *DB) SyncWAL(ctx context.Context) error {
	return db.wal.SyncNow(ctx, db.visible.Load())
}

// makeRoom freezes a full memtable and stalls while too many frozen ones
// wait for a flush. Caller holds writeMu.
func (db *DB) makeRoom(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	for {
		if db.closed {
			return ErrClosed
		}
		if db.bgErr != nil {
			return db.bgErr
		}
		if db.mem.Size() < db.opts.MemtableSize {
			return nil
		}
		if len(db.imms) < db.opts.MaxImmutable {
			return db.freezeLocked()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		db.st.stalls.Add(1)
		db.work.Wait()
	}
}

// freezeLocked rotates the WAL and moves the memtable to the flush queue.
// Caller holds writeMu and mu.
func (db *DB) freezeLocked() error {
	if db.mem.Len() == 0 {
		return nil
	}
	last, err := db.wal.Rotate()
	if err != nil {
		return fmt.Errorf("lsm: rotate WAL: %w", err)
	}
	db.mem.Freeze()
	imms := make([]*imm, len(db.imms), len(db.imms)+1)
	copy(imms, db.imms)
	db.imms = append(imms, &imm{t: db.mem, lastLSN: last, flushed: make(chan struct{})})
	db.mem = memtable.New()
	db.work.Broadcast()
	return nil
}

// Flush freezes the memtable (if it holds anything) and waits until every
// frozen memtable is in an SSTable recorded by the manifest.
func (db *DB) Flush(ctx context.Context) error {
	db.writeMu.Lock()
	db.mu.Lock()
	var err error
	if db.closed {
		err = ErrClosed
	} else if db.bgErr != nil {
		err = db.bgErr
	} else {
		err = db.freezeLocked()
	}
	var wait []*imm
	if err == nil {
		wait = db.imms
	}
	db.mu.Unlock()
	db.writeMu.Unlock()
	if err != nil {
		return err
	}
	for _, im := range wait {
		select {
		case <-im.flushed:
		case <-ctx.Done():
			return ctx.Err()
		case <-db.bgDone:
			db.mu.RLock()
			err := db.bgErr
			db.mu.RUnlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		}
	}
	return nil
}

// Checkpoint flushes the memtable, rewrites the manifest as a single
// checkpoint, and deletes the WAL segments the flush made unnecessary: the
// WAL then holds only records above the flushed LSN.
func (db *DB) Checkpoint(ctx context.Context) error {
	if err := db.Flush(ctx); err != nil {
		return err
	}
	db.installMu.Lock()
	defer db.installMu.Unlock()
	if err := db.man.Checkpoint(ctx); err != nil {
		return fmt.Errorf("lsm: checkpoint: %w", err)
	}
	if _, err := db.wal.Truncate(db.man.State().FlushedLSN); err != nil {
		return fmt.Errorf("lsm: truncate WAL: %w", err)
	}
	return nil
}
