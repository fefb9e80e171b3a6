package lsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/store/manifest"
	"github.com/meridian-ops/meridian/store/memtable"
	"github.com/meridian-ops/meridian/store/sstable"
	"github.com/meridian-ops/meridian/store/wal"
)

// Sentinel errors.
var (
	// ErrNotFound is returned by Get for a key with no live value.
	ErrNotFound = errors.New("lsm: not found")
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("lsm: closed")
	// ErrBackground wraps the error of a failed background flush or
	// compaction; once set, writes are rejected until the DB is reopened.
	ErrBackground = errors.New("lsm: background work failed")
)

// imm is a frozen memtable waiting for its flush.
type imm struct {
	t       *memtable.Table
	lastLSN uint64        // the WAL rotated after this LSN
	flushed chan struct{} // closed once the table is in the manifest
}

// DB is an open LSM engine. All methods are safe for concurrent use.
type DB struct {
	opts  Options
	dir   string
	man   *manifest.Manifest
	wal   *wal.Writer
	cache *sstable.Cache

	writeMu sync.Mutex // serializes Apply: LSN order = memtable order

	// mu guards the read state (mem, imms, ver) and background control.
	mu      sync.RWMutex
	mem     *memtable.Table
	imms    []*imm // oldest first; replaced, never mutated in place
	ver     *version
	bgErr   error
	closed  bool
	work    *sync.Cond // on mu (write-locked): bg work available / done
	visible atomic.Uint64

	installMu sync.Mutex // manifest edit + version swap
	compactMu sync.Mutex // one compaction at a time
	jobMu     sync.Mutex // held by each background job; Check takes it
	bgDone    chan struct{}

	delMu    sync.Mutex
	deleting map[uint64]bool // obsolete tables still referenced

	st    counters
	recov Recovery
}

// Recovery describes what Open found.
type Recovery struct {
	Duration        time.Duration
	WALRecords      int // batches replayed above the flushed LSN
	WALSegments     int
	TornBytes       int64
	OrphansRemoved  int
	FlushedLSN      uint64 // from the manifest
	LastLSN         uint64 // after replay
	TablesOpened    int
	ManifestEntries int
}

// Open opens (creating if needed) the DB in dir and recovers it.
func Open(ctx context.Context, dir string, o *Options) (*DB, error) {
	start := time.Now()
	if o == nil {
		o = &Options{}
	}
	opts := o.withDefaults()
	db := &DB{opts: opts, dir: dir, deleting: map[uint64]bool{}}
	db.work = sync.NewCond(&db.mu)
	if opts.BlockCacheSize > 0 {
		db.cache = sstable.NewCache(opts.BlockCacheSize)
	}
	if err := opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("lsm: mkdir: %w", err)
	}
	man, err := manifest.Open(ctx, manifest.Options{FS: opts.FS, Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("lsm: open manifest: %w", err)
	}
	db.man = man
	if err := db.recover(ctx); err != nil {
		man.Close()
		if db.ver != nil {
			db.ver.unref()
		}
		return nil, err
	}
	db.recov.Duration = time.Since(start)
	db.bgDone = make(chan struct{})
	go db.background()
	opts.Logger.Info("lsm: opened", "dir", dir, "replayed", db.recov.WALRecords,
		"last_lsn", db.recov.LastLSN, "tables", db.recov.TablesOpened, "took", db.recov.Duration)
	return db, nil
}

func (db *DB) recover(ctx context.Context) error {
	fs := db.opts.FS
	st := db.man.State()
	db.recov.FlushedLSN = st.FlushedLSN
	// Orphans: tables written by a flush or compaction whose manifest edit
	// never became durable.
	names, err := fs.List(db.dir)
	if err != nil {
		return fmt.Errorf("lsm: list: %w", err)
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".sst") {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(n, ".sst"), 10, 64)
		if err != nil || st.Has(id) {
			continue
		}
		if err := fs.Remove(filepath.Join(db.dir, n)); err != nil {
			return fmt.Errorf("lsm: remove orphan %s: %w", n, err)
		}
		db.recov.OrphansRemoved++
	}
	byID := map[uint64]*table{}
	for _, lvl := range st.Levels {
		for _, m := range lvl {
			f, err := fs.Open(db.tableName(m.ID))
			if err != nil {
				return fmt.Errorf("lsm: open table %d: %w", m.ID, err)
			}
			r, err := sstable.Open(f, m.ID, db.cache)
			if err != nil {
				f.Close()
				return fmt.Errorf("lsm: table %d: %w", m.ID, err)
			}
			byID[m.ID] = &table{meta: m, r: r, db: db}
			db.recov.TablesOpened++
		}
	}
	if db.ver, err = newVersion(st, byID); err != nil {
		return err
	}
	// Replay the WAL above the flushed LSN into memtables. Entries are
	// gathered per memtable-full, sorted, and appended to a fresh skiplist
	// in one pass (much faster than random-order inserts).
	walDir := filepath.Join(db.dir, "wal")
	var pending []replayEntry
	var pendingSize int64
	build := func() *memtable.Table {
		slices.SortFunc(pending, compareReplay)
		t := memtable.New()
		for _, e := range pending {
			t.AppendSorted(e.key, e.lsn, e.kind, e.value)
		}
		pending, pendingSize = pending[:0], 0
		return t
	}
	seq := int32(0)
	res, err := wal.Replay(ctx, fs, walDir, st.FlushedLSN, func(lsn uint64, p []byte) error {
		if _, err := decodeBatch(p, func(kind memtable.Kind, k, v []byte) {
			seq++
			pending = append(pending, replayEntry{prefix: keyPrefix(k), key: k, value: v, lsn: lsn, seq: seq, kind: kind})
			pendingSize += int64(len(k) + len(v) + 80)
		}); err != nil {
			return fmt.Errorf("lsn %d: %w", lsn, err)
		}
		if pendingSize >= db.opts.MemtableSize {
			t := build()
			t.Freeze()
			db.imms = append(db.imms, &imm{t: t, lastLSN: lsn, flushed: make(chan struct{})})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lsm: replay WAL: %w", err)
	}
	db.mem = build()
	db.recov.WALRecords, db.recov.WALSegments, db.recov.TornBytes, db.recov.LastLSN =
		res.Records, res.Segments, res.TornBytes, res.LastLSN
	db.visible.Store(res.LastLSN)
	db.wal, err = wal.Open(ctx, wal.Options{FS: fs, Dir: walDir, Sync: db.opts.Sync,
		Interval: db.opts.SyncInterval, SegmentSize: db.opts.WALSegmentSize}, res.LastLSN+1)
	if err != nil {
		return fmt.Errorf("lsm: open WAL: %w", err)
	}
	return nil
}

// Recovery returns what Open found and did.
func (db *DB) Recovery() Recovery { return db.recov }

// Close stops background work, syncs the WAL and closes every file. The
// memtable is not flushed: its contents are in the WAL and are replayed by
// the next Open.
func (db *DB) Close() error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	db.closed = true
	db.work.Broadcast()
	db.mu.Unlock()
	<-db.bgDone
	err := db.wal.Close()
	if e := db.man.Close(); err == nil && e != nil && !errors.Is(e, manifest.ErrClosed) {
		err = e
	}
	db.mu.Lock()
	v := db.ver
	db.ver = nil
	db.mu.Unlock()
	v.unref()
	if err != nil && !errors.Is(err, wal.ErrClosed) {
		return fmt.Errorf("lsm: close: %w", err)
	}
	return nil
}

func (db *DB) pendingDelete(id uint64, add bool) {
	db.delMu.Lock()
	if add {
		db.deleting[id] = true
	} else {
		delete(db.deleting, id)
	}
	db.delMu.Unlock()
}

// readState is what a reader holds: the memtables and a version ref.
type readState struct {
	mem  *memtable.Table
	imms []*imm
	ver  *version
}

func (db *DB) acquire() (readState, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return readState{}, ErrClosed
	}
	db.ver.ref()
	return readState{mem: db.mem, imms: db.imms, ver: db.ver}, nil
}

// replayEntry is one WAL entry awaiting the sorted memtable build; key and
// value alias the segment bytes read by the replay.
type replayEntry struct {
	prefix     uint64
	key, value []byte
	lsn        uint64
	seq        int32 // position in the log: later wins among equal (key, LSN)
	kind       memtable.Kind
}

// compareReplay orders entries as the memtable does: key ascending, LSN
// descending, and within one batch the later write first.
func compareReplay(a, b replayEntry) int {
	if a.prefix != b.prefix {
		if a.prefix < b.prefix {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	if a.lsn != b.lsn {
		if a.lsn > b.lsn {
			return -1
		}
		return 1
	}
	switch {
	case a.seq > b.seq:
		return -1
	case a.seq < b.seq:
		return 1
	}
	return 0
}

func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var p uint64
	for i, c := range key {
		p |= uint64(c) << (56 - 8*i)
	}
	return p
}
