package lsm

import (
	"sync/atomic"

	"github.com/meridian-ops/meridian/store/manifest"
	"github.com/meridian-ops/meridian/store/sstable"
)

type counters struct {
	batches, entries                                   atomic.Int64
	gets, tableProbes, bloomSkips, bloomFalsePositives atomic.Int64
	flushes, compactions, stalls                       atomic.Int64
	bytesFlushed, bytesCompactedIn, bytesCompactedOut  atomic.Int64
	tombstonesDropped, filterDropped                   atomic.Int64
}

// Stats is a snapshot of the engine's counters and shape.
type Stats struct {
	Batches, Entries int64 // applied since Open
	Gets             int64
	// TableProbes counts SSTables whose key range covered a Get's key;
	// BloomSkips of those were ruled out by the bloom filter without a
	// block read; BloomFalsePositives passed the filter but lacked the key.
	TableProbes, BloomSkips, BloomFalsePositives int64
	Flushes, Compactions                         int64
	WriteStalls                                  int64
	BytesFlushed                                 int64
	BytesCompactedIn, BytesCompactedOut          int64
	TombstonesDropped, FilterDropped             int64
	WALBytes, WALSyncs                           int64
	WALSegments                                  int

	Tables      [manifest.NumLevels]int
	TableBytes  [manifest.NumLevels]int64
	Memtables   int // active + frozen
	MemtableB   int64
	BlockCache  sstable.CacheStats
	FlushedLSN  uint64
	LastLSN     uint64
	ManifestB   int64
	ManifestRew int // manifest rewrites (checkpoints)
}

// BloomSkipRate is BloomSkips / TableProbes (0 with no probes).
func (s Stats) BloomSkipRate() float64 {
	if s.TableProbes == 0 {
		return 0
	}
	return float64(s.BloomSkips) / float64(s.TableProbes)
}

// TotalTables sums Tables.
func (s Stats) TotalTables() int {
	n := 0
	for _, t := range s.Tables {
		n += t
	}
	return n
}

// Stats returns the current counters.
func (db *DB) Stats() Stats {
	s := Stats{
		Batches: db.st.batches.Load(), Entries: db.st.entries.Load(), Gets: db.st.gets.Load(),
		TableProbes: db.st.tableProbes.Load(), BloomSkips: db.st.bloomSkips.Load(),
		BloomFalsePositives: db.st.bloomFalsePositives.Load(),
		Flushes:             db.st.flushes.Load(), Compactions: db.st.compactions.Load(), WriteStalls: db.st.stalls.Load(),
		BytesFlushed: db.st.bytesFlushed.Load(), BytesCompactedIn: db.st.bytesCompactedIn.Load(),
		BytesCompactedOut: db.st.bytesCompactedOut.Load(), TombstonesDropped: db.st.tombstonesDropped.Load(),
		FilterDropped: db.st.filterDropped.Load(),
		BlockCache:    db.cache.Stats(),
		LastLSN:       db.visible.Load(),
	}
	ws := db.wal.Stats()
	s.WALBytes, s.WALSyncs, s.WALSegments = ws.BytesWritten, ws.Syncs, len(db.wal.Segments())
	st := db.man.State()
	s.FlushedLSN, s.ManifestB, s.ManifestRew = st.FlushedLSN, db.man.Size(), db.man.Rewrites()
	for l, lvl := range st.Levels {
		s.Tables[l] = len(lvl)
		for _, t := range lvl {
			s.TableBytes[l] += t.Size
		}
	}
	db.mu.RLock()
	s.Memtables = 1 + len(db.imms)
	s.MemtableB = db.mem.Size()
	for _, im := range db.imms {
		s.MemtableB += im.t.Size()
	}
	db.mu.RUnlock()
	return s
}

// TableFiles returns the live tables' ids per level (for tests and demos).
func (db *DB) TableFiles() [manifest.NumLevels][]uint64 {
	var out [manifest.NumLevels][]uint64
	st := db.man.State()
	for l, lvl := range st.Levels {
		for _, t := range lvl {
			out[l] = append(out[l], t.ID)
		}
	}
	return out
}

// WALSegments returns the first LSN of each WAL segment, oldest first.
func (db *DB) WALSegments() []uint64 { return db.wal.Segments() }
