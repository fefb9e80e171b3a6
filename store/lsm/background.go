package lsm

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/meridian-ops/meridian/store/manifest"
	"github.com/meridian-ops/meridian/store/sstable"
)

// background runs flushes (first) and compactions (when due) until Close
// or the first failure, which it records in bgErr.
func (db *DB) background() {
	defer close(db.bgDone)
	ctx := context.Background()
	for {
		db.mu.Lock()
		for !db.closed && len(db.imms) == 0 && !db.compactionDueLocked() {
			db.work.Wait()
		}
		if db.closed {
			db.mu.Unlock()
			return
		}
		var job func(context.Context) error
		if len(db.imms) > 0 {
			im := db.imms[0]
			job = func(ctx context.Context) error { return db.flush(ctx, im) }
		} else {
			job = db.compactDue
		}
		db.mu.Unlock()

		db.jobMu.Lock()
		err := job(ctx)
		db.jobMu.Unlock()
		if err != nil {
			db.opts.Logger.Error("lsm: background work failed", "err", err)
			db.mu.Lock()
			db.bgErr = fmt.Errorf("%w: %w", ErrBackground, err)
			db.work.Broadcast()
			db.mu.Unlock()
			return
		}
	}
}

// compactionDueLocked reports whether a level is over its trigger. Caller
// holds mu.
func (db *DB) compactionDueLocked() bool {
	if db.opts.DisableAutoCompaction {
		return false
	}
	_, _, ok := db.pickLocked()
	return ok
}

// pickLocked chooses the next automatic compaction: L0 at its table-count
// trigger, else the shallowest level over its size budget.
func (db *DB) pickLocked() (level int, inputs []*table, ok bool) {
	v := db.ver
	if len(v.levels[0]) >= db.opts.L0CompactionTrigger {
		return 0, v.levels[0], true
	}
	budget := db.opts.LevelBaseSize
	for l := 1; l < manifest.NumLevels-1; l++ {
		if levelSize(v.levels[l]) > budget && len(v.levels[l]) > 0 {
			return l, v.levels[l][:1], true
		}
		budget *= 10
	}
	return 0, nil, false
}

// flush writes a frozen memtable to an L0 table and records it.
func (db *DB) flush(ctx context.Context, im *imm) error {
	start := time.Now()
	id := db.man.NewFileID()
	name := db.tableName(id)
	f, err := db.opts.FS.Create(name)
	if err != nil {
		return fmt.Errorf("flush: create %s: %w", name, err)
	}
	w := sstable.NewWriter(f, sstable.WriterOptions{BlockSize: db.opts.BlockSize, BitsPerKey: db.opts.BitsPerKey})
	it := im.t.Iter(^uint64(0))
	for ok := it.First(); ok; ok = it.Next() {
		if err := w.Add(it.Key(), sstable.Kind(it.Kind()), it.Value()); err != nil {
			w.Abort()
			db.removeUnrecorded(id)
			return fmt.Errorf("flush: %w", err)
		}
	}
	meta, err := w.Finish()
	if err != nil {
		db.removeUnrecorded(id)
		return fmt.Errorf("flush: %w", err)
	}
	if err := db.opts.FS.SyncDir(db.dir); err != nil {
		db.removeUnrecorded(id)
		return fmt.Errorf("flush: sync dir: %w", err)
	}
	t, err := db.openTable(manifest.TableMeta{ID: id, Level: 0, Size: meta.Size, Entries: uint64(meta.Entries),
		Smallest: meta.Smallest, Largest: meta.Largest})
	if err != nil {
		db.removeUnrecorded(id)
		return err
	}
	edit := manifest.Edit{FlushedLSN: im.lastLSN, Add: []manifest.TableMeta{t.meta}}
	if err := db.install(ctx, edit, []*table{t}, func() {
		db.imms = db.imms[1:len(db.imms):len(db.imms)]
	}); err != nil {
		// Not removed: the manifest edit may have become durable (a
		// failed fsync after a complete write); recovery decides.
		t.r.Close()
		return fmt.Errorf("flush: %w", err)
	}
	close(im.flushed)
	if _, err := db.wal.Truncate(im.lastLSN); err != nil {
		db.opts.Logger.Warn("lsm: WAL truncate", "err", err)
	}
	db.st.flushes.Add(1)
	db.st.bytesFlushed.Add(meta.Size)
	db.opts.Logger.Debug("lsm: flushed", "table", id, "entries", meta.Entries, "bytes", meta.Size,
		"flushed_lsn", im.lastLSN, "took", time.Since(start))
	return nil
}

// removeUnrecorded deletes the table file id, written by a flush or
// compaction that failed before its manifest edit was attempted, so no
// manifest can name it. Without this the partial file stayed until the
// next Open (which deletes orphans): on a full disk it kept the space the
// failed job had taken, and Check reported an orphan.
func (db *DB) removeUnrecorded(id uint64) {
	if err := db.opts.FS.Remove(db.tableName(id)); err != nil {
		db.opts.Logger.Warn("lsm: remove table of a failed job", "table", id, "err", err)
	}
}

func (db *DB) openTable(m manifest.TableMeta) (*table, error) {
	f, err := db.opts.FS.Open(db.tableName(m.ID))
	if err != nil {
		return nil, fmt.Errorf("open table %d: %w", m.ID, err)
	}
	r, err := sstable.Open(f, m.ID, db.cache)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open table %d: %w", m.ID, err)
	}
	return &table{meta: m, r: r, db: db}, nil
}

// install makes edit durable in the manifest, then swaps in the version it
// describes (running also, under mu, to adjust the memtable queue). Tables
// the new version drops become obsolete and are deleted once unreferenced.
func (db *DB) install(ctx context.Context, edit manifest.Edit, added []*table, also func()) error {
	db.installMu.Lock()
	defer db.installMu.Unlock()
	if err := db.man.Apply(ctx, edit); err != nil {
		return err
	}
	st := db.man.State()
	db.mu.Lock()
	defer db.mu.Unlock()
	byID := db.ver.byID()
	for _, t := range added {
		byID[t.meta.ID] = t
	}
	nv, err := newVersion(st, byID)
	if err != nil {
		return err
	}
	for _, r := range edit.Remove {
		if t := byID[r.ID]; t != nil {
			db.pendingDelete(r.ID, true)
			t.obsolete.Store(true)
		}
	}
	old := db.ver
	db.ver = nv
	if also != nil {
		also()
	}
	old.unref()
	db.work.Broadcast()
	return nil
}

// Compact merges every L0 table (with the overlapping L1 tables) into L1
// now, whatever the trigger, after flushing the memtable.
func (db *DB) Compact(ctx context.Context) error {
	if err := db.Flush(ctx); err != nil {
		return err
	}
	db.jobMu.Lock()
	defer db.jobMu.Unlock()
	db.mu.RLock()
	l0 := db.ver.levels[0]
	db.mu.RUnlock()
	if len(l0) == 0 {
		return nil
	}
	return db.compact(ctx, 0, l0)
}

func (db *DB) compactDue(ctx context.Context) error {
	db.mu.RLock()
	level, inputs, ok := db.pickLocked()
	db.mu.RUnlock()
	if !ok {
		return nil
	}
	return db.compact(ctx, level, inputs)
}

// compact merges inputs (tables of level) with the overlapping tables of
// level+1 into new level+1 tables.
func (db *DB) compact(ctx context.Context, level int, inputs []*table) error {
	db.compactMu.Lock()
	defer db.compactMu.Unlock()
	start := time.Now()
	out := level + 1
	db.mu.RLock()
	v := db.ver
	v.ref()
	db.mu.RUnlock()
	defer v.unref()

	lo, hi := inputs[0].meta.Smallest, inputs[0].meta.Largest
	for _, t := range inputs[1:] {
		if bytes.Compare(t.meta.Smallest, lo) < 0 {
			lo = t.meta.Smallest
		}
		if bytes.Compare(t.meta.Largest, hi) > 0 {
			hi = t.meta.Largest
		}
	}
	var next []*table
	for _, t := range v.levels[out] {
		if bytes.Compare(t.meta.Largest, lo) >= 0 && bytes.Compare(t.meta.Smallest, hi) <= 0 {
			next = append(next, t)
			if bytes.Compare(t.meta.Smallest, lo) < 0 {
				lo = t.meta.Smallest
			}
			if bytes.Compare(t.meta.Largest, hi) > 0 {
				hi = t.meta.Largest
			}
		}
	}
	bottom := true
	for _, lvl := range v.levels[out+1:] {
		for _, t := range lvl {
			if bytes.Compare(t.meta.Largest, lo) >= 0 && bytes.Compare(t.meta.Smallest, hi) <= 0 {
				bottom = false
			}
		}
	}
	// Sources newest first: L0 by descending id, then the input level, then
	// the output level.
	var srcs []source
	var inBytes int64
	if level == 0 {
		for i := len(inputs) - 1; i >= 0; i-- {
			srcs = append(srcs, &tableSource{it: inputs[i].r.NewIter()})
			inBytes += inputs[i].meta.Size
		}
	} else {
		srcs = append(srcs, newLevelSource(inputs))
		inBytes += levelSize(inputs)
	}
	if len(next) > 0 {
		srcs = append(srcs, newLevelSource(next))
		inBytes += levelSize(next)
	}
	var filter CompactionFilter
	if db.opts.NewCompactionFilter != nil {
		filter = db.opts.NewCompactionFilter(CompactionInfo{InputLevel: level, OutputLevel: out, Bottommost: bottom})
	}

	var (
		outputs []*table
		created []uint64 // every output file, finished or not
		w       *sstable.Writer
		wid     uint64
		outB    int64
	)
	// fail abandons the compaction before its manifest edit: the output
	// files are named by no manifest, so they are removed.
	fail := func(err error) error {
		if w != nil {
			w.Abort()
		}
		for _, t := range outputs {
			t.r.Close()
		}
		for _, id := range created {
			db.removeUnrecorded(id)
		}
		return fmt.Errorf("compaction L%d->L%d: %w", level, out, err)
	}
	finish := func() error {
		meta, err := w.Finish()
		w = nil
		if err != nil {
			return err
		}
		t, err := db.openTable(manifest.TableMeta{ID: wid, Level: out, Size: meta.Size,
			Entries: uint64(meta.Entries), Smallest: meta.Smallest, Largest: meta.Largest})
		if err != nil {
			return err
		}
		outputs = append(outputs, t)
		outB += meta.Size
		return nil
	}
	m := newMerge(srcs)
	for ok := m.first(); ok; ok = m.next() {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		key, val, kind := m.key(), m.value(), m.kind()
		if kind == sstable.KindSet && filter != nil && filter.Filter(key, val) == Drop {
			db.st.filterDropped.Add(1)
			kind, val = sstable.KindDelete, nil
		}
		if kind == sstable.KindDelete && bottom {
			db.st.tombstonesDropped.Add(1)
			continue
		}
		if w == nil {
			wid = db.man.NewFileID()
			f, err := db.opts.FS.Create(db.tableName(wid))
			if err != nil {
				return fail(err)
			}
			created = append(created, wid)
			w = sstable.NewWriter(f, sstable.WriterOptions{BlockSize: db.opts.BlockSize, BitsPerKey: db.opts.BitsPerKey})
		}
		if err := w.Add(key, kind, val); err != nil {
			return fail(err)
		}
		if w.EstimatedSize() >= db.opts.TargetFileSize {
			if err := finish(); err != nil {
				return fail(err)
			}
		}
	}
	if err := m.err(); err != nil {
		return fail(err)
	}
	if w != nil {
		if err := finish(); err != nil {
			return fail(err)
		}
	}
	if err := db.opts.FS.SyncDir(db.dir); err != nil {
		return fail(err)
	}
	edit := manifest.Edit{}
	for _, t := range inputs {
		edit.Remove = append(edit.Remove, manifest.TableRef{Level: level, ID: t.meta.ID})
	}
	for _, t := range next {
		edit.Remove = append(edit.Remove, manifest.TableRef{Level: out, ID: t.meta.ID})
	}
	for _, t := range outputs {
		edit.Add = append(edit.Add, t.meta)
	}
	if err := db.install(ctx, edit, outputs, nil); err != nil {
		// Outputs kept: the manifest edit may be durable; recovery decides.
		for _, t := range outputs {
			t.r.Close()
		}
		return fmt.Errorf("compaction L%d->L%d: %w", level, out, err)
	}
	db.st.compactions.Add(1)
	db.st.bytesCompactedIn.Add(inBytes)
	db.st.bytesCompactedOut.Add(outB)
	db.opts.Logger.Debug("lsm: compacted", "from", level, "to", out, "inputs", len(inputs)+len(next),
		"outputs", len(outputs), "bottommost", bottom, "took", time.Since(start))
	return nil
}
