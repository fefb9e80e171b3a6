// Package lsm is the OOR's log-structured merge-tree engine: the store
// worker's write-optimized key-value store for the TLE catalog, and the
// base the MVCC layer (store/mvcc) builds on. Keys and values are opaque
// byte strings ordered bytewise.
//
// Write path: Apply appends a Batch to the WAL (store/wal) as one record
// with one LSN, applies it to the memtable (store/memtable), publishes it to
// readers, then waits for durability per the sync policy. When the
// memtable passes Options.MemtableSize it is frozen, the WAL rotates, and a
// background goroutine flushes it to a level-0 SSTable (store/sstable) and
// records the table and the flushed LSN in the manifest (store/manifest).
// When L0 holds Options.L0CompactionTrigger tables they are merged with the
// overlapping L1 tables into new non-overlapping L1 tables; deeper levels
// are compacted when they outgrow their size budget. Tombstones are dropped
// when the output level is the bottommost for their key range.
//
// Read path: Get probes the memtable, the frozen memtables, then L0 tables
// newest first and one table per deeper level, skipping tables whose key
// range or bloom filter rules the key out. Iterators merge every source
// with newest-wins and hide tombstones; they read a consistent snapshot
// (the LSN published when they were created and the tables live then).
//
// Recovery (Open): read the manifest, delete SSTables it does not name
// (orphans of a crash mid-flush or mid-compaction), open the live tables,
// replay WAL records above the flushed LSN (a torn tail is cut, not an
// error), and start a fresh WAL segment.
//
// Guarantees:
//
//   - A Batch is atomic: readers see all of it or none, and recovery
//     applies all of it or none (it is one checksummed WAL record).
//   - Apply returns once the batch is durable according to Options.Sync
//     (see store/wal for each policy's loss window). ApplyNoWait and
//     WaitDurable split the two steps for callers that pipeline.
//   - Flushes and compactions change the table set atomically through the
//     manifest; a crash at any point recovers every acknowledged write.
//   - Check verifies the whole structure (manifest invariants, every block
//     checksum, key order, bloom filters, memtables, WAL continuity).
//
// Caveats: writes become visible to readers when applied, which is just
// before Apply's durability wait; a reader may therefore see a write that a
// crash then loses (under SyncAlways only if Apply has not returned yet).
// After a WAL or manifest I/O error the DB rejects further writes
// (ErrBackground or the WAL's ErrClosed); reopen it to recover. Close
// iterators before closing the DB.
package lsm
