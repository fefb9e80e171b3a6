package mvcc

import (
	"bytes"

	"github.com/meridian-ops/meridian/store/lsm"
)

// newGC is the LSM's compaction-filter factory: it fixes the watermark for
// the compaction, raises the horizon to it (so no snapshot can open below
// what the compaction may drop), and returns the per-key retention filter.
func (db *DB) newGC(info lsm.CompactionInfo) lsm.CompactionFilter {
	db.mu.Lock()
	wm := db.watermarkLocked()
	db.horizon = max(db.horizon, wm)
	db.mu.Unlock()
	return &gcFilter{db: db, wm: wm, keep: db.opts.RetainBelowWatermark, bottom: info.Bottommost}
}

// gcFilter sees a compaction's entries in key order, so each key's
// versions arrive newest first. Rule (see the package doc): keep every
// version above the watermark and the newest `keep` at or below it; drop
// the rest. When the newest version at or below the watermark is a delete
// and the output is the bottommost level, drop it and everything older.
type gcFilter struct {
	db     *DB
	wm     uint64
	keep   int
	bottom bool

	cur     []byte // version prefix of the key being filtered
	below   int    // versions at or below wm seen for cur
	deleted bool   // cur's newest version at or below wm is a delete (bottommost only)
}

func (f *gcFilter) Filter(key, value []byte) lsm.Decision {
	if len(key) < 1+2+tsLen || key[0] != prefixData {
		return lsm.Keep
	}
	if p := versionPrefix(key); !bytes.Equal(p, f.cur) {
		f.cur, f.below, f.deleted = append(f.cur[:0], p...), 0, false
	}
	if versionTS(key) > f.wm {
		return lsm.Keep
	}
	f.below++
	if f.below == 1 && f.bottom && (len(value) == 0 || value[0] == kindDelete) {
		f.deleted = true
	}
	if f.deleted || f.below > f.keep {
		f.db.gcDropped.Add(1)
		return lsm.Drop
	}
	return lsm.Keep
}
