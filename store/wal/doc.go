// Package wal is the write-ahead log of the OOR LSM engine (store/lsm).
// Every batch of puts and deletes is appended here as one checksummed record
// with a log sequence number (LSN) before it touches the memtable; on restart
// the engine replays the records above the manifest's flushed LSN.
//
// Layout: a directory of segment files named by the LSN of their first
// record ("00000000000000000001.log"). A segment holds consecutive LSNs;
// the next segment starts at the LSN after the previous one's last record.
// Record framing is drawn in record.go.
//
// Guarantees:
//
//   - A record is applied on replay only if its CRC, length and LSN all
//     check out; LSNs must be consecutive. Replay stops a segment at its first
//     bad record: a torn tail (a partial last write, or bytes that were never
//     synced) is cut, not an error. A gap between segments (acknowledged
//     records missing) is ErrCorrupt.
//   - Segments are fsynced before the writer moves to a new one, and a new
//     segment's directory entry is synced before records in it are
//     acknowledged, so only the newest segment can have a torn tail from the
//     last run.
//   - Truncate deletes segments whose records are all at or below a flushed
//     LSN; the live segment is never deleted.
//
// Sync policies and what each can lose:
//
//	policy        when Writer.Sync/WaitDurable returns        lost on power failure or kill -9
//	SyncAlways    after an fsync covering the LSN; concurrent  nothing that was acknowledged
//	              waiters share one fsync (group commit)
//	SyncInterval  after the next periodic fsync (every         writes not yet waited for: at most the
//	              Interval, default 5 ms)                      last Interval + one fsync of writes
//	SyncNone      immediately (no fsync); the buffer reaches   kill -9: the unwritten buffer (up to
//	              the OS when full, on rotation and on close   BufferSize bytes); power loss:
//	                                                           everything since the last rotation
//
// Caveats: after a failed write or fsync the Writer is poisoned (ErrClosed
// wrapped with the cause) because the page cache can no longer be trusted
// to match the file; the engine must be reopened, which replays what
// actually reached the disk.
package wal
