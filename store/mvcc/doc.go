// Package mvcc adds multi-version concurrency control to the OOR's LSM
// engine (store/lsm): snapshot reads at a timestamp, snapshot-isolated
// transactions with first-committer-wins conflict detection, and garbage
// collection of versions no reader can see. The store worker
// (workers/store) keeps the TLE catalog here through store/catalog; the
// query layer (store/query) reads snapshots as Sources. Standard library
// only.
//
// # Versions
//
// Every write is a new LSM key: the user key, escaped so that user-key
// order is kept, then the commit timestamp inverted and big-endian, so a
// key's versions sit together newest first (see key.go). A delete is a
// version whose value says "deleted". Reading key at ts is one SeekGE to
// encode(key, ts): the first entry with the key's prefix is the newest
// version at or below ts.
//
// Commit timestamps are max(wall clock ns, last+1): unique, increasing
// with the LSN of the commit's WAL record, and meaningful as times, so an
// as_of read takes a time. The last one is stored in every commit batch
// (atomically with the versions) and recovered at Open.
//
// # Transactions
//
// Begin opens a transaction reading at Now, the newest timestamp whose
// commits are all durable. Writes are buffered; Commit, under one mutex,
// checks each written key against the newest commit timestamp of that key
// (an in-memory table, pruned of entries no open transaction can conflict
// with), fails with ErrConflict if any is above the read timestamp (the
// first committer won), else assigns the timestamp and applies all
// versions as one LSM batch (one WAL record: atomic). It then waits for
// the WAL to make the batch durable (group commit: concurrent commits
// share an fsync) before publishing the timestamp as Now. So a reader
// never sees a commit a crash could lose, and readers never wait for
// writers: a snapshot is a timestamp plus the LSM's lock-free iterators.
//
// # Garbage collection and the retention rule
//
// The watermark is the oldest read timestamp of any open snapshot or
// transaction (Now when none is open), lowered by HistoryRetention. At the
// start of each compaction the collector fixes the watermark and raises the
// horizon to it; a snapshot below the horizon is refused (ErrSnapshotTooOld)
// rather than served versions that may be gone. For each key the compaction
// keeps:
//
//   - every version above the watermark (some open snapshot may read it);
//   - the newest RetainBelowWatermark (default 2) versions at or below it,
//     and drops older ones.
//
// The newest version at or below the watermark is what the oldest snapshot
// reads, so RetainBelowWatermark = 1 is the minimum that is correct. The
// default keeps one more as a safety margin, as the course asks: with
// watermark 100 and versions 30, 70, 90 and 120, 120 is above the
// watermark, 90 is what a reader at 100 sees, 70 is the margin, and 30 is
// collected (TestCourseGarbageCollection). A key whose newest version at or
// below the watermark is a delete is removed entirely, versions and delete,
// once the compaction writes the bottommost level (above it, removing the
// delete could let an older version in a deeper level resurface).
//
// The horizon is not persisted: Open starts it at the watermark with no
// readers (Now minus HistoryRetention), the highest any earlier compaction
// could have used, so as_of reads after a restart are served only within
// the retention window (the model test found the lower bound necessary).
//
// Compaction sees a key's versions only in the levels it merges; those in
// shallower levels are newer, so it can only under-count and keep more.
//
// # Caveats
//
// A Snapshot and a Txn are used by one goroutine at a time; open as many
// as needed. Long-lived snapshots pin old versions (and the LSM tables they
// read). Reads at a future timestamp are clamped to Now.
package mvcc
