// Package query is the OOR's query layer: volcano operators over catalog
// rows, a vectorized filter over columnar batches, three join algorithms,
// a k-way merge and the catalog's conflict-resolving group-by. It sits on
// top of store/mvcc (a snapshot plugs in as a Source) and below the store
// worker's oor.tle.scan and oor.catalog.merge endpoints (ARCHITECTURE.md,
// "The OOR engine"). Standard library only.
//
// # Model
//
// Every row operator implements Operator[T]: Open(ctx) prepares it (and, for
// pipeline breakers such as Sort and the build side of HashJoin, consumes its
// input), Next returns the next row or nil at the end, Close releases it.
// Plans are trees of operators built as plain struct literals:
//
//	plan := &query.Projection[query.Row, query.IDEpoch]{
//		Input: &query.Filter[query.Row]{
//			Input: &query.SeqScan{Src: src},
//			Pred:  func(r *query.Row) bool { return r.Rec.Inclination > 80 },
//			Label: "inclination > 80",
//		},
//		Fn: query.ProjectIDEpoch, Label: "norad_id, epoch",
//	}
//
// Operators: SeqScan (over a Source), Filter, Projection, Sort, Limit,
// Concat, Merge (k-way, min-heap), Resolve (group-by NORAD id: newest epoch
// wins, ties by source priority, conflicts counted), HashJoin (build side
// consumed in Open), SortMergeJoin (presorted inputs) and NestedLoopJoin (the
// baseline, also as an anti-join). CatalogMerge builds the course's
// Resolve(Merge(SeqScan...)) plan; NestedLoopMerge is the quadratic merge it
// replaces, kept as a baseline and reference. The vectorized path is
// VecOperator: ColumnScan or VecScan produce Batches of BatchSize rows in
// columnar form and VecFilter narrows their selection vector in place.
// Explain prints a plan tree with the rows each node produced.
//
// # Sources
//
// A Source is anything that can scan a NORAD id range in order and hand out
// Rows through a Cursor. SliceSource serves rows in memory. A storage
// snapshot (store/mvcc) plugs in by wrapping its iterator of encoded
// 82-byte records with DecodeCursor, which tags each row with its catalog
// provider (SourceInfo); Generate makes the course's synthetic providers.
//
// # Guarantees
//
//   - Hot paths do not allocate per row: operators hand out pointers to rows
//     they or their inputs own, and reuse their buffers across Next calls and
//     across re-Open.
//   - Merge, Resolve and SortMergeJoin verify their inputs are sorted by
//     NORAD id and fail with ErrUnsorted rather than emit a wrong result.
//   - Output orders are deterministic: Merge breaks key ties by input index,
//     Sort is stable, the joins emit left (probe/outer) order with right
//     matches in right order, so NestedLoopJoin, HashJoin and (for a sorted
//     left input) SortMergeJoin emit the same sequence.
//   - Resolve keeps, per NORAD id, the row with the newest epoch (two-digit
//     years expanded, so 99365 < 00001); equal epochs go to the higher
//     Priority; a full tie keeps the first row in input order.
//
// # Caveats
//
//   - A row returned by Next (and a Batch returned by NextBatch) is valid
//     only until the next call to Next/NextBatch or Close on that operator,
//     and is read-only: it may point into a source's memory. Copy it to keep
//     it.
//   - An operator tree is used by one goroutine at a time. A SliceSource may
//     be scanned by many plans at once as long as nobody mutates its Rows.
//   - Sort and the hash table hold their whole input in memory; there is no
//     spilling.
package query
