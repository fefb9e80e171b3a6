// Package sstable is the immutable sorted-table file of the OOR LSM engine:
// store/lsm flushes each frozen memtable into one, and compaction merges
// them into new ones. A table maps keys (strictly increasing, compared as
// bytes) to a kind (set or tombstone) and a value.
//
// A file is data blocks, a bloom filter block, an index block with the last
// key of every data block, and a fixed footer; each part carries its own
// CRC-32C. The layouts are drawn in block.go and table.go.
//
// Types: Writer builds a table from sorted entries; Reader opens one
// (verifying footer, index and filter) and serves Get, MayContain and
// Iter; Cache is the block cache shared by the readers of one engine.
//
// Guarantees: every decoder checks lengths and checksums before it trusts a
// byte, so a corrupt or hostile file yields ErrCorrupt, never a panic or an
// unbounded allocation. Readers are safe for concurrent use; iterators are
// not (one per goroutine).
//
// Caveats: keys and values returned by Get and iterators alias a cached
// block and must not be modified; they stay valid while the caller holds
// them (blocks are never reused).
package sstable
