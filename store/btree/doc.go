// Package btree is the OOR engine's B+ tree: an ordered index from NORAD
// catalog ids (uint32) to fixed-size values, whose nodes are 4 KiB pages in
// a store/bufpool buffer pool over a store/pagefile file.
//
// The value size is fixed per tree (Options.ValueSize): 82 bytes to keep TLE
// records in the leaves (the default), or 6 bytes to index slotted.RID
// record ids as the course's index does.
//
// # Guarantees
//
//   - Get and Scan read O(height) pages; height is 3 for 100,000 TLE
//     records. Get appends into the caller's buffer and Scan hands out
//     borrowed bytes, so neither allocates.
//   - Put splits full nodes, propagating splits up to a new root; all leaves
//     are always at the same depth. Leaves form a doubly linked list in key
//     order, which Scan follows. A split pins every page it touches and
//     allocates its new pages before changing anything, so an I/O error (or
//     ErrAllPinned with a tiny pool) leaves the tree unchanged, at worst with
//     an orphaned empty page.
//   - Delete removes the key from its leaf without rebalancing (lazy, as the
//     course allows): leaves may underflow or become empty, separators stay
//     valid.
//   - BulkLoad builds a tree from strictly increasing keys bottom-up with
//     full leaves (fill factor ≥ 99% for 100,000 TLE records).
//   - Every node page is validated (type, level, key count) each time it is
//     visited, and the pool verifies checksums on every read, so a corrupt
//     file yields ErrCorrupt or pagefile.ErrChecksum, never a panic or
//     garbage. Check walks the whole tree and verifies every invariant.
//
// # Types
//
// Tree is the index; Options configures it (zero value: 82-byte values);
// Stats reports height, node counts and fill; Node is a validated read-only
// view of one node page (DecodeNode), used by Check and by the fuzz tests.
//
// # Caveats
//
// A Tree is safe for concurrent use: readers share a lock, writers are
// exclusive. A Scan callback must not call back into the tree's writers (it
// holds the read lock). Values passed to a Scan callback are valid only for
// the duration of the call. Sync writes the meta page and all dirty pages
// and fsyncs, but pages reach the file in no particular order, so a crash
// during Sync can leave a torn tree; crash safety is the WAL's job, not this
// package's. Deleted space is not reclaimed.
package btree
