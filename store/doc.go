// Package store is the root of the Orbital Object Registry (OOR) storage
// engine: Meridian's own store for the TLE catalog, built on the standard
// library only and free of any bus (NATS) imports.
//
// Each layer is its own package below this one, with its own tests and
// benchmarks:
//
//	store/tle       the 82-byte TleRecord codec and the two-line element parser
//	store/vfs       the file-system interface every layer writes through (fault injection in tests)
//	store/pagefile  4 KiB pages with a CRC32-checked header
//	store/bufpool   buffer pool: eviction, pin counts, dirty pages, hit/miss stats
//	store/slotted   slotted pages with stable slot ids
//	store/btree     the B+ tree over NORAD ids
//	store/wal, store/sstable, store/bloom, store/memtable, store/manifest, store/lsm
//	                the LSM engine with its WAL and crash-safe manifest
//	store/mvcc      snapshot isolation on top of the LSM
//	store/query     volcano operators, vectorized filter, joins, k-way merge
//
// The store worker (workers/store) owns one engine instance and is its only
// writer; everything else asks it over NATS.
package store
