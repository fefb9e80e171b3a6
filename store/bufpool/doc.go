// Package bufpool is the OOR engine's buffer pool: a fixed number of 4 KiB
// frames caching pages of one pagefile.Pager, between the page file below
// and the slotted pages and B+ tree above.
//
// # Guarantees
//
//   - Fetch returns a pinned frame; a pinned frame is never evicted or
//     reused until every pin is released with Unpin.
//   - A frame unpinned as dirty is written back (sealed, checksummed) before
//     its frame is reused, and by Flush. Pages read from disk are verified by
//     the pager, so a corrupt page surfaces as an error from Fetch and never
//     enters the pool.
//   - When every frame is pinned, Fetch and NewPage fail with ErrAllPinned
//     instead of blocking.
//   - Stats counts hits, misses, evictions and page writes exactly.
//
// # Eviction
//
// CLOCK (second chance): a hit sets the frame's reference bit; the hand
// clears bits as it sweeps and takes the first unpinned frame whose bit is
// already clear. The page table is a slice indexed by page id (ids are dense),
// so a hit costs one index and no hashing, and a hit takes no lock: it pins
// the frame with a compare-and-swap and re-checks the page id.
//
// # Types
//
// Pool owns the frames; Frame is one pinned page (ID, Data). Config sizes the
// pool; its zero value gives DefaultFrames frames.
//
// # Caveats
//
// The pool is safe for concurrent use, but it guards only its own metadata:
// callers that share a pinned frame must coordinate access to its bytes (the
// B+ tree does so with its own lock). A miss holds the pool lock during the
// disk read (misses are serialised). Flush does not fsync; call Sync.
package bufpool
