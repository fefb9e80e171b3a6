package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/store/lsm"
)

// Errors callers branch on.
var (
	// ErrConflict: another transaction committed a write to a key this
	// transaction writes after this transaction's read timestamp (first
	// committer wins). Retry the transaction from Begin.
	ErrConflict = errors.New("mvcc: write conflict")
	// ErrNotFound: no visible version, or the visible version is a delete.
	ErrNotFound = errors.New("mvcc: not found")
	// ErrSnapshotTooOld: the read timestamp is below the garbage-collection
	// horizon, so the versions it would see may be gone.
	ErrSnapshotTooOld = errors.New("mvcc: snapshot older than the GC horizon")
	// ErrTxnDone: the transaction was already committed or rolled back.
	ErrTxnDone = errors.New("mvcc: transaction already finished")
)

// Options configure a DB.
type Options struct {
	// LSM configures the underlying engine; NewCompactionFilter is
	// replaced by the MVCC garbage collector.
	LSM lsm.Options
	// Now returns the wall clock in Unix nanoseconds (default time.Now).
	// Commit timestamps are max(Now(), last+1), so they are unique,
	// increasing, and close to real time: as_of reads take a time.
	Now func() uint64
	// RetainBelowWatermark is how many versions at or below the watermark
	// compaction keeps per key (default 2; see the package doc).
	RetainBelowWatermark int
	// HistoryRetention keeps every version newer than now minus this much
	// (in commit-timestamp nanoseconds) for as_of reads (default 0).
	HistoryRetention time.Duration
}

// DB is a multi-version store on an LSM engine. Safe for concurrent use.
type DB struct {
	lsm  *lsm.DB
	opts Options

	// commitMu serializes commit-timestamp assignment, conflict checks
	// and the LSM apply, so timestamps and LSNs increase together.
	commitMu  sync.Mutex
	lastTS    uint64            // highest assigned commit ts (under commitMu)
	lastWrite map[string]uint64 // key -> newest commit ts, for conflict checks
	batch     lsm.Batch
	keyBuf    []byte
	valBuf    []byte

	visible atomic.Uint64 // newest ts whose commit (and all below) is durable

	mu      sync.Mutex     // guards active and horizon
	active  map[uint64]int // read ts -> open snapshots
	horizon uint64         // highest watermark handed to a compaction

	commits, conflicts, gcDropped atomic.Int64
}

// Open opens (creating if needed) the multi-version store in dir.
func Open(ctx context.Context, dir string, o *Options) (*DB, error) {
	db := &DB{lastWrite: make(map[string]uint64), active: make(map[uint64]int)}
	if o != nil {
		db.opts = *o
	}
	if db.opts.Now == nil {
		db.opts.Now = func() uint64 { return uint64(time.Now().UnixNano()) }
	}
	if db.opts.RetainBelowWatermark <= 0 {
		db.opts.RetainBelowWatermark = 2
	}
	lo := db.opts.LSM
	lo.NewCompactionFilter = db.newGC
	l, err := lsm.Open(ctx, dir, &lo)
	if err != nil {
		return nil, fmt.Errorf("mvcc: %w", err)
	}
	db.lsm = l
	v, err := l.Get(ctx, metaLastTS)
	switch {
	case errors.Is(err, lsm.ErrNotFound):
	case err != nil:
		_ = l.Close()
		return nil, fmt.Errorf("mvcc: read last commit timestamp: %w", err)
	case len(v) != 8:
		_ = l.Close()
		return nil, fmt.Errorf("mvcc: last commit timestamp has %d bytes: %w", len(v), ErrBadKey)
	default:
		db.lastTS = binary.BigEndian.Uint64(v)
	}
	db.visible.Store(db.lastTS)
	// Compactions before this Open may have collected up to the watermark
	// of their time, which is at most today's: start the horizon there.
	db.horizon = db.watermarkLocked()
	return db, nil
}

// Close closes the engine. Close snapshots and finish transactions first.
func (db *DB) Close() error { return db.lsm.Close() }

// LSM returns the underlying engine (stats, checks, compaction).
func (db *DB) LSM() *lsm.DB { return db.lsm }

// Now returns the newest timestamp whose commits are all durable and
// visible: a snapshot at Now sees every commit that has returned.
func (db *DB) Now() uint64 { return db.visible.Load() }

// Stats are the MVCC layer's counters.
type Stats struct {
	Commits, Conflicts int64
	GCDropped          int64 // versions removed by compaction
	ActiveSnapshots    int
	Watermark, Horizon uint64
	LastCommitTS       uint64
}

// Stats returns the current counters.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	n := 0
	for _, c := range db.active {
		n += c
	}
	hz := db.horizon
	db.mu.Unlock()
	return Stats{
		Commits: db.commits.Load(), Conflicts: db.conflicts.Load(), GCDropped: db.gcDropped.Load(),
		ActiveSnapshots: n, Watermark: db.Watermark(), Horizon: hz, LastCommitTS: db.visible.Load(),
	}
}

// Watermark returns the oldest read timestamp any open snapshot or
// transaction uses (the visible timestamp when none is open), lowered by
// HistoryRetention. Versions newer than it are never collected.
func (db *DB) Watermark() uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.watermarkLocked()
}

func (db *DB) watermarkLocked() uint64 {
	wm := db.visible.Load()
	for ts := range db.active {
		wm = min(wm, ts)
	}
	if r := uint64(db.opts.HistoryRetention); r > 0 {
		if wm > r {
			wm -= r
		} else {
			wm = 0
		}
	}
	return wm
}

// register records an open reader at ts; it refuses a ts below the
// horizon (compaction may already have dropped what it would read).
func (db *DB) register(ts uint64) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if ts < db.horizon {
		return fmt.Errorf("%w: read at %d, horizon %d", ErrSnapshotTooOld, ts, db.horizon)
	}
	db.active[ts]++
	return nil
}

func (db *DB) unregister(ts uint64) {
	db.mu.Lock()
	if db.active[ts]--; db.active[ts] <= 0 {
		delete(db.active, ts)
	}
	db.mu.Unlock()
}

// Snapshot opens a read-only view at asOf (0 or above Now means Now).
// Close it to release the watermark.
func (db *DB) Snapshot(ctx context.Context, asOf uint64) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ts := db.visible.Load()
	if asOf != 0 && asOf < ts {
		ts = asOf
	}
	if err := db.register(ts); err != nil {
		return nil, err
	}
	return &Snapshot{db: db, ts: ts}, nil
}

// Begin starts a read-write transaction reading at Now.
func (db *DB) Begin(ctx context.Context) (*Txn, error) {
	s, err := db.Snapshot(ctx, 0)
	if err != nil {
		return nil, err
	}
	return &Txn{snap: s, writes: make(map[string]pending)}, nil
}

// commit applies writes as one LSM batch at a fresh timestamp after the
// conflict check, then waits for durability and publishes the timestamp.
func (db *DB) commit(ctx context.Context, readTS uint64, writes map[string]pending) (uint64, error) {
	db.commitMu.Lock()
	for k := range writes {
		if db.lastWrite[k] > readTS {
			db.commitMu.Unlock()
			db.conflicts.Add(1)
			return 0, fmt.Errorf("%w: key %q was committed after read timestamp %d", ErrConflict, k, readTS)
		}
	}
	ts := max(db.opts.Now(), db.lastTS+1)
	if ts == math.MaxUint64 {
		db.commitMu.Unlock()
		return 0, errors.New("mvcc: commit timestamps exhausted")
	}
	b := &db.batch
	b.Reset()
	key, val := db.keyBuf[:0], db.valBuf[:0] // Batch.Put copies both
	for k, w := range writes {
		key = AppendKey(key[:0], []byte(k), ts)
		if w.del {
			val = append(val[:0], kindDelete)
		} else {
			val = append(append(val[:0], kindPut), w.value...)
		}
		b.Put(key, val)
	}
	db.keyBuf, db.valBuf = key, val
	b.Put(metaLastTS, binary.BigEndian.AppendUint64(nil, ts))
	lsn, err := db.lsm.ApplyNoWait(ctx, b)
	if err != nil {
		db.commitMu.Unlock()
		return 0, fmt.Errorf("mvcc: commit: %w", err)
	}
	db.lastTS = ts
	for k := range writes {
		db.lastWrite[k] = ts
	}
	if len(db.lastWrite) > 1<<16 {
		db.pruneLastWrite()
	}
	db.commitMu.Unlock()

	if err := db.lsm.WaitDurable(ctx, lsn); err != nil {
		return 0, fmt.Errorf("mvcc: commit %d not durable: %w", ts, err)
	}
	for {
		v := db.visible.Load()
		if v >= ts || db.visible.CompareAndSwap(v, ts) {
			break
		}
	}
	db.commits.Add(1)
	return ts, nil
}

// pruneLastWrite forgets commits no transaction can conflict with: those
// at or below every open reader's timestamp and already visible (a new
// transaction reads at Now, so it sees them). Called under commitMu.
func (db *DB) pruneLastWrite() {
	db.mu.Lock()
	floor := db.visible.Load()
	for ts := range db.active {
		floor = min(floor, ts)
	}
	db.mu.Unlock()
	for k, ts := range db.lastWrite {
		if ts <= floor {
			delete(db.lastWrite, k)
		}
	}
}

// Version is one stored version of a key, for inspection.
type Version struct {
	TS      uint64
	Deleted bool
	Value   []byte
}

// Versions returns every stored version of key, newest first, whether or
// not any snapshot can still see it (for tests, demos and debugging).
func (db *DB) Versions(ctx context.Context, key []byte) ([]Version, error) {
	lo := appendPrefix(nil, key)
	hi := append(bytes.Clone(lo), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	var out []Version
	err := db.lsm.Scan(ctx, lo, hi, func(k, v []byte) error {
		if len(v) == 0 {
			return fmt.Errorf("mvcc: empty version value: %w", ErrBadKey)
		}
		out = append(out, Version{TS: versionTS(k), Deleted: v[0] == kindDelete, Value: bytes.Clone(v[1:])})
		return nil
	})
	return out, err
}
