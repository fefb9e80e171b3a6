package lsm

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/meridian-ops/meridian/store/manifest"
	"github.com/meridian-ops/meridian/store/sstable"
)

// table is an open SSTable shared by the versions that list it. Its file
// is deleted when it is obsolete (compacted away) and the last version
// holding it is released.
type table struct {
	meta     manifest.TableMeta
	r        *sstable.Reader
	refs     atomic.Int32
	obsolete atomic.Bool
	db       *DB
}

func (t *table) ref() { t.refs.Add(1) }

func (t *table) unref() {
	if t.refs.Add(-1) != 0 {
		return
	}
	t.r.Close()
	if t.obsolete.Load() {
		name := t.db.tableName(t.meta.ID)
		if err := t.db.opts.FS.Remove(name); err != nil {
			t.db.opts.Logger.Warn("lsm: remove obsolete table", "file", name, "err", err)
		}
		t.db.pendingDelete(t.meta.ID, false)
	}
}

// version is an immutable table set, reference counted by the DB (while
// current) and by readers.
type version struct {
	refs   atomic.Int32
	levels [manifest.NumLevels][]*table // L0 oldest first; deeper by key
}

func (v *version) ref() { v.refs.Add(1) }

func (v *version) unref() {
	if v.refs.Add(-1) != 0 {
		return
	}
	for _, l := range v.levels {
		for _, t := range l {
			t.unref()
		}
	}
}

// newVersion builds a version mirroring st from the tables in byID.
func newVersion(st manifest.State, byID map[uint64]*table) (*version, error) {
	v := &version{}
	v.refs.Store(1)
	for l, lvl := range st.Levels {
		for _, m := range lvl {
			t, ok := byID[m.ID]
			if !ok {
				return nil, fmt.Errorf("lsm: manifest names table %d that is not open", m.ID)
			}
			t.ref()
			v.levels[l] = append(v.levels[l], t)
		}
	}
	return v, nil
}

func (v *version) byID() map[uint64]*table {
	m := map[uint64]*table{}
	for _, l := range v.levels {
		for _, t := range l {
			m[t.meta.ID] = t
		}
	}
	return m
}

// find returns the table in a sorted level (L1+) whose range may hold key.
func findTable(lvl []*table, key []byte) *table {
	i := sort.Search(len(lvl), func(i int) bool { return bytes.Compare(lvl[i].meta.Largest, key) >= 0 })
	if i < len(lvl) && bytes.Compare(lvl[i].meta.Smallest, key) <= 0 {
		return lvl[i]
	}
	return nil
}

func (db *DB) tableName(id uint64) string {
	return filepath.Join(db.dir, fmt.Sprintf("%06d.sst", id))
}

func levelSize(lvl []*table) int64 {
	var n int64
	for _, t := range lvl {
		n += t.meta.Size
	}
	return n
}
