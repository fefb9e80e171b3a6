// Package memtable is the in-memory write buffer of the OOR LSM engine
// (store/lsm): a skiplist sorted by key ascending, then LSN descending, so
// several versions of a key can coexist and a reader at snapshot LSN s sees
// the newest version with LSN <= s.
//
// Guarantees: one writer (Add) and any number of concurrent readers (Get,
// iterators) need no lock: links are atomic pointers and a node is fully
// built before it is published. Entries are never removed or changed.
// Memory is taken from arenas, so Add allocates rarely.
//
// Lifecycle: the engine fills a Table until Size passes its limit (4 MiB by
// default), then Freeze makes it immutable and a fresh Table takes the
// writes while the frozen one is flushed to an SSTable.
//
// Caveats: Add must not be called concurrently with itself or after Freeze.
// Keys and values passed to Add are copied; slices returned by Get and
// iterators alias the arena and must not be modified.
package memtable
