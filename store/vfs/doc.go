// Package vfs is the file-system interface every layer of the OOR LSM engine
// (store/wal, store/sstable, store/manifest, store/lsm) writes through. No
// layer calls package os directly, so tests can swap the disk for a strict
// in-memory file system or wrap it with fault injection.
//
// Types:
//
//   - FS and File: the small interface (create, open, rename, remove, list,
//     sync a file, sync a directory).
//   - Default (OS): the real disk via package os.
//   - Mem: an in-memory FS with strict sync semantics. Crash() simulates
//     power loss: every file keeps only the bytes that were covered by a
//     File.Sync, and only directory entries (creates, renames, removes) that
//     were made durable by SyncDir survive.
//   - Faulty: wraps any FS and lets a test fail chosen operations (writes,
//     fsyncs, renames, ...), turn a write into a short write, or model a full
//     disk (ENOSPC) with a byte budget.
//
// Guarantees: Mem is safe for concurrent use. An open File stays readable
// after its name is removed or renamed over (POSIX semantics), on both OS and
// Mem, which the LSM relies on to delete compacted tables while readers still
// hold them.
//
// Caveats: Mem keeps one flat namespace keyed by cleaned path; directories
// exist implicitly. SyncDir(dir) commits the entries whose parent is dir.
package vfs
