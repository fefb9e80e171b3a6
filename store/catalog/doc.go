// Package catalog is the Orbital Object Registry's schema on the MVCC store
// (store/mvcc): what the store worker (workers/store) keeps for each of the
// five catalog providers and for the resolved catalog, how an element-set
// update is applied, and how snapshots are read, scanned and merged through
// the query layer (store/query). No NATS imports.
//
// # Keys
//
//	's' | source id (1 byte) | norad id (u32 BE) -> 82-byte tle.Record as that source last reported it
//	'o' | norad id (u32 BE)                     -> 82-byte tle.Record | winning source id (1 byte) | name
//
// The name rides in the resolved entry (one read per object) and is kept
// when a winner gives none.
//
// Big-endian ids make key order NORAD-id order, so a source's records scan
// in the order the k-way merge needs, and the resolved catalog answers gets
// and range scans directly.
//
// # Updates
//
// Apply commits a batch of updates as one MVCC transaction (one WAL record,
// one fsync: group commit). For each update it writes the source's record
// unless it is byte-identical to the stored one (so a redelivered update
// is a no-op and creates no version), and replaces the resolved entry when
// the update wins under the query layer's rule (query.Newer: newest epoch,
// two-digit years expanded; equal epochs to the higher source priority).
// The resolved entry is therefore always what a full catalog merge of the
// per-source records yields (TestResolvedMatchesMerge).
package catalog
