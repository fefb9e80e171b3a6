// Package manifest records which SSTables are live in the OOR LSM engine
// (store/lsm), at which level, and the flushed LSN: the highest WAL LSN
// whose effects are in those tables. It is what makes flushes and
// compactions atomic: a new set of tables exists only once the edit naming
// it is fsynced in the manifest.
//
// Layout in the engine's directory:
//
//	CURRENT            names the live manifest file ("MANIFEST-000004\n")
//	MANIFEST-000004    an append-only log of edits (framing and edit
//	                   encoding drawn in edit.go); its first edit is a
//	                   checkpoint: the complete state.
//
// Each Apply appends one edit and fsyncs before returning. When the log
// outgrows MaxSize, on Checkpoint, and at an Open that finds a torn tail,
// the state is written as a checkpoint
// into a new manifest file, which becomes live by writing CURRENT.tmp and
// renaming it over CURRENT (atomic), followed by a directory fsync. The old
// manifest is then deleted.
//
// Guarantees: after a crash, Open sees either the state before or after
// any edit, never a mix; a torn last edit (its Apply never returned) is
// ignored. State.Check verifies the level invariants (L1 and deeper sorted
// and non-overlapping).
//
// Caveats: table files themselves are not managed here; store/lsm deletes
// files the state does not name (orphans from a crash mid-flush or
// mid-compaction) after Open.
package manifest
