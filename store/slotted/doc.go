// Package slotted stores variable-length records in 4 KiB pages (the
// classic slotted-page layout) and, in Heap, across many such pages held in
// the buffer pool, addressed by record id RID{Page, Slot}.
//
// It sits above store/bufpool and store/pagefile; the course's "TLE Record
// Page Manager" is a Heap of 82-byte TLE records.
//
// # Guarantees
//
//   - Slot ids are stable: Compact moves record bytes but never renumbers
//     slots, so a RID stays valid until its record is deleted.
//   - Delete leaves a tombstone; Get of a tombstone reports not found. A
//     later Insert into the same page may reuse a tombstoned slot id.
//   - Insert checks for room before touching the page: ErrPageFull leaves
//     the page byte-for-byte unchanged. If the total free space suffices but
//     is fragmented, Insert compacts first.
//   - Page methods never panic on a malformed page: Get bounds-checks every
//     slot, and Check reports any inconsistency as ErrCorrupt.
//
// # Caveats
//
// A Heap does not store its own catalog: OpenHeap rediscovers its pages by
// type. Heap is not safe for concurrent use.
package slotted
