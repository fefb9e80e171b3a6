package lsm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Check verifies the engine's invariants and returns the first violation:
// the manifest state (ids, L1+ sorted and non-overlapping), the open
// version matching it, every table's blocks, checksums, key order, bloom
// filter and bounds, the memtables' skiplists, no orphan table files, and
// WAL segments covering every LSN above the flushed LSN. It waits for the
// running background job and blocks others while it runs.
func (db *DB) Check() error {
	db.jobMu.Lock()
	defer db.jobMu.Unlock()
	st := db.man.State()
	if err := st.Check(); err != nil {
		return err
	}
	rs, err := db.acquire()
	if err != nil {
		return err
	}
	defer rs.ver.unref()
	live := map[uint64]bool{}
	for l, lvl := range st.Levels {
		if len(lvl) != len(rs.ver.levels[l]) {
			return fmt.Errorf("lsm: L%d has %d tables open, manifest lists %d", l, len(rs.ver.levels[l]), len(lvl))
		}
		for i, m := range lvl {
			t := rs.ver.levels[l][i]
			if t.meta.ID != m.ID {
				return fmt.Errorf("lsm: L%d position %d is table %d, manifest says %d", l, i, t.meta.ID, m.ID)
			}
			if err := t.r.Check(); err != nil {
				return fmt.Errorf("lsm: %w", err)
			}
			lo, hi, err := t.r.Bounds()
			if err != nil {
				return err
			}
			if !bytes.Equal(lo, m.Smallest) || !bytes.Equal(hi, m.Largest) || t.r.Entries() != m.Entries {
				return fmt.Errorf("lsm: table %d bounds/entries differ from the manifest", m.ID)
			}
			live[m.ID] = true
		}
	}
	if err := rs.mem.Check(); err != nil {
		return err
	}
	for _, im := range rs.imms {
		if err := im.t.Check(); err != nil {
			return err
		}
	}
	names, err := db.opts.FS.List(db.dir)
	if err != nil {
		return err
	}
	db.delMu.Lock()
	defer db.delMu.Unlock()
	for _, n := range names {
		if !strings.HasSuffix(n, ".sst") {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(n, ".sst"), 10, 64)
		if err != nil {
			return fmt.Errorf("lsm: stray file %s", n)
		}
		if !live[id] && !db.deleting[id] {
			return fmt.Errorf("lsm: orphan table file %s", n)
		}
	}
	segs := db.wal.Segments()
	if last := db.visible.Load(); last > st.FlushedLSN && (len(segs) == 0 || segs[0] > st.FlushedLSN+1) {
		return fmt.Errorf("lsm: WAL segments %v do not cover LSNs %d..%d", segs, st.FlushedLSN+1, last)
	}
	return nil
}
