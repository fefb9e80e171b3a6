package lsm

import (
	"bytes"
	"context"

	"github.com/meridian-ops/meridian/store/bloom"
	"github.com/meridian-ops/meridian/store/memtable"
	"github.com/meridian-ops/meridian/store/sstable"
)

// Get returns a copy of key's value, or ErrNotFound.
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := db.get(key)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

func (db *DB) get(key []byte) ([]byte, error) {
	db.st.gets.Add(1)
	snap := db.visible.Load()
	rs, err := db.acquire()
	if err != nil {
		return nil, err
	}
	defer rs.ver.unref()
	if v, kind, ok := rs.mem.Get(key, snap); ok {
		return memResult(v, kind)
	}
	for i := len(rs.imms) - 1; i >= 0; i-- {
		if v, kind, ok := rs.imms[i].t.Get(key, snap); ok {
			return memResult(v, kind)
		}
	}
	h := bloom.Hash(key)
	l0 := rs.ver.levels[0]
	for i := len(l0) - 1; i >= 0; i-- {
		t := l0[i]
		if bytes.Compare(key, t.meta.Smallest) < 0 || bytes.Compare(key, t.meta.Largest) > 0 {
			continue
		}
		if v, found, err := db.probe(t, key, h); found || err != nil {
			return v, err
		}
	}
	for _, lvl := range rs.ver.levels[1:] {
		if t := findTable(lvl, key); t != nil {
			if v, found, err := db.probe(t, key, h); found || err != nil {
				return v, err
			}
		}
	}
	return nil, ErrNotFound
}

func memResult(v []byte, kind memtable.Kind) ([]byte, error) {
	if kind == memtable.KindDelete {
		return nil, ErrNotFound
	}
	return v, nil
}

// probe looks key up in one table whose range covers it; found reports a
// definitive answer (a value, or ErrNotFound for a tombstone).
func (db *DB) probe(t *table, key []byte, h uint64) ([]byte, bool, error) {
	db.st.tableProbes.Add(1)
	if !t.r.MayContain(h) {
		db.st.bloomSkips.Add(1)
		return nil, false, nil
	}
	v, kind, found, err := t.r.Get(key)
	if err != nil {
		return nil, true, err
	}
	if !found {
		if t.r.HasFilter() {
			db.st.bloomFalsePositives.Add(1)
		}
		return nil, false, nil
	}
	if kind == sstable.KindDelete {
		return nil, true, ErrNotFound
	}
	return v, true, nil
}
