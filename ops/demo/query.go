package demo

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/meridian-ops/meridian/store/query"
)

// queryRuns is how often each timed step runs (the best run is printed).
// The race-detector build of the tests lowers it to 1.
var queryRuns = 3

// Query runs the course's "Orbital Catalog Merge System" scenario on five
// synthetic sources of 100,000 objects (store/query.Generate): the volcano
// plan, hash and sort-merge joins, the 5-way merge with conflict
// resolution against the nested-loop baseline, and the vectorized filter.
// It prints the figures and fails when a criterion does not hold.
func Query(ctx context.Context, w io.Writer) error {
	const n = 100_000
	runs := queryRuns
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	rows := make([][]query.Row, len(query.CourseSources))
	srcs := make([]query.Source, len(rows))
	for i, s := range query.CourseSources {
		rows[i] = query.Generate(s, n, 2026)
		srcs[i] = &query.SliceSource{Name: s.Name, Rows: rows[i], Sorted: true}
	}
	p("Catalog merge: %d sources × %d TLE records\n", len(srcs), n)

	// 1. SeqScan → Filter → Projection (→ Sort).
	plan := &query.Sort[query.IDEpoch]{Label: "epoch desc",
		Cmp: func(a, b *query.IDEpoch) int { return cmpF(b.Epoch, a.Epoch) },
		Input: &query.Projection[query.Row, query.IDEpoch]{Fn: query.ProjectIDEpoch, Label: "norad_id, epoch",
			Input: &query.Filter[query.Row]{Label: "inclination > 80°", Input: &query.SeqScan{Src: srcs[0]},
				Pred: func(r *query.Row) bool { return r.Rec.Inclination > 80 }}}}
	want := 0
	for i := range rows[0] {
		if rows[0][i].Rec.Inclination > 80 {
			want++
		}
	}
	var got int64
	planTime, err := best(runs, func() (err error) {
		got, err = query.Drain(ctx, query.Operator[query.IDEpoch](plan), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("criterion 1: %w", err)
	}
	p("Elapsed times are the best of %d runs.\n", runs)
	p("\n[1] volcano plan, %v:\n", planTime.Round(time.Microsecond))
	query.Explain(w, plan)
	if got != int64(want) {
		return fmt.Errorf("criterion 1: plan produced %d rows, want %d", got, want)
	}

	// 2, 3. Joins of two 100k-row sources; B renumbered to even ids so
	// exactly 50,000 pairs match.
	b := slices.Clone(rows[1])
	for i := range b {
		b[i].NoradID *= 2
	}
	sa := &query.SliceSource{Name: "18th SDS", Rows: rows[0], Sorted: true}
	sb := &query.SliceSource{Name: "ESA SST (even ids)", Rows: b, Sorted: true}
	type pr struct{ l, r uint32 }
	var hj, smj []pr
	hjOp := &query.HashJoin{Left: &query.SeqScan{Src: sa}, Right: &query.SeqScan{Src: sb}}
	smjOp := &query.SortMergeJoin{Left: &query.SeqScan{Src: sa}, Right: &query.SeqScan{Src: sb}}
	if _, err := query.Drain(ctx, query.Operator[query.Joined](hjOp),
		func(j *query.Joined) { hj = append(hj, pr{j.Left.NoradID, j.Right.NoradID}) }); err != nil {
		return fmt.Errorf("criterion 2: %w", err)
	}
	if _, err := query.Drain(ctx, query.Operator[query.Joined](smjOp),
		func(j *query.Joined) { smj = append(smj, pr{j.Left.NoradID, j.Right.NoradID}) }); err != nil {
		return fmt.Errorf("criterion 3: %w", err)
	}
	hjTime, err := best(runs, func() error { _, err := query.Drain(ctx, query.Operator[query.Joined](hjOp), nil); return err })
	if err != nil {
		return fmt.Errorf("criterion 2: %w", err)
	}
	smjTime, err := best(runs, func() error { _, err := query.Drain(ctx, query.Operator[query.Joined](smjOp), nil); return err })
	if err != nil {
		return fmt.Errorf("criterion 3: %w", err)
	}
	p("\n[2] hash join 100k × 100k on norad_id: %d pairs in %v\n", len(hj), hjTime.Round(time.Microsecond))
	p("[3] sort-merge join (presorted):      %d pairs in %v, identical to hash join: %v\n",
		len(smj), smjTime.Round(time.Microsecond), slices.Equal(hj, smj))
	for i, x := range hj {
		if id := uint32(2 * (i + 1)); x.l != id || x.r != id {
			return fmt.Errorf("criterion 2: pair %d is %d/%d, want %d/%d", i, x.l, x.r, id, id)
		}
	}
	if len(hj) != n/2 {
		return fmt.Errorf("criterion 2: %d pairs, want %d", len(hj), n/2)
	}
	if !slices.Equal(hj, smj) {
		return fmt.Errorf("criterion 3: sort-merge join differs from hash join")
	}

	// 4. The 5-way merge on its own: sorted, every record once.
	scans := func(ss []query.Source) []query.Operator[query.Row] {
		ops := make([]query.Operator[query.Row], len(ss))
		for i, s := range ss {
			ops[i] = &query.SeqScan{Src: s}
		}
		return ops
	}
	var prev uint32
	var merged int64
	sorted := true
	mergeOp := &query.Merge{Inputs: scans(srcs)}
	mergeOnly, err := best(runs, func() (err error) {
		prev = 0
		merged, err = query.Drain(ctx, query.Operator[query.Row](mergeOp), func(r *query.Row) {
			sorted = sorted && r.NoradID >= prev
			prev = r.NoradID
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("criterion 4: %w", err)
	}
	p("\n[4] 5-way min-heap merge: %d records in %v, sorted: %v\n", merged, mergeOnly.Round(time.Microsecond), sorted)
	if merged != int64(len(srcs)*n) || !sorted {
		return fmt.Errorf("criterion 4: merged %d records (sorted %v), want %d sorted", merged, sorted, len(srcs)*n)
	}

	// 5, 6. Merge + conflict resolution, and the nested-loop comparison.
	res := query.CatalogMerge(srcs...)
	winners := make([]query.Row, 0, n)
	mergeTime, err := best(runs, func() error {
		winners = winners[:0]
		_, err := query.Drain(ctx, query.Operator[query.Row](res), func(r *query.Row) { winners = append(winners, *r) })
		return err
	})
	if err != nil {
		return fmt.Errorf("criterion 5: %w", err)
	}
	p("\n[5] 5-way merge + conflict resolution of %d records through the operators: %v (criterion: < 2s)\n",
		len(srcs)*n, mergeTime.Round(time.Microsecond))
	if mergeTime >= 2*time.Second {
		return fmt.Errorf("criterion 5: merge took %v, limit 2s", mergeTime)
	}
	const sub = 1000
	subSrcs := make([]query.Source, len(srcs))
	for i := range rows {
		subSrcs[i] = &query.SliceSource{Rows: rows[i][:sub], Sorted: true}
	}
	var nl, heapSub []query.Row
	var cmps int64
	nlTime, err := best(1, func() (err error) { // slow by design: one run
		nl, cmps, err = query.NestedLoopMerge(ctx, subSrcs...)
		return err
	})
	if err != nil {
		return fmt.Errorf("criterion 5: nested loop: %w", err)
	}
	heapTime, err := best(runs, func() (err error) {
		heapSub, err = query.Collect[query.Row](ctx, query.CatalogMerge(subSrcs...))
		return err
	})
	if err != nil {
		return fmt.Errorf("criterion 5: %w", err)
	}
	p("    subset %d per source: nested-loop %v (%d comparisons), heap merge %v, speedup %.0f×, same winners: %v\n",
		sub, nlTime.Round(time.Microsecond), cmps, heapTime.Round(time.Microsecond),
		nlTime.Seconds()/heapTime.Seconds(), slices.Equal(nl, heapSub))
	if !slices.Equal(nl, heapSub) {
		return fmt.Errorf("criterion 5: heap merge and nested-loop merge disagree on the subset")
	}

	st := res.Stats()
	p("\n[6] conflicts resolved: %d objects reported by several sources, %d superseded TLEs, %d epoch ties decided by priority\n",
		st.Conflicts, st.Superseded, st.PriorityTies)
	p("    wins per source:")
	for _, s := range query.CourseSources {
		p(" %s %d;", s.Name, st.Wins[s.ID])
	}
	p("\n    %-7s %-12s %-9s  candidate epochs (source: epoch)\n", "NORAD", "winner", "epoch")
	samples := []uint32{1, 7, 1000, 12345, 25544, 33591, 43013, 48274, 100000}
	for i := range winners { // and the first object whose newest epoch is shared: priority decides
		if ties := tiedAtNewest(rows, i); ties > 1 {
			samples = append(samples, uint32(i+1))
			break
		}
	}
	for _, id := range samples {
		w := winners[id-1]
		best := &rows[0][id-1]
		line := ""
		for s := range rows {
			r := &rows[s][id-1]
			if query.Newer(r, best) {
				best = r
			}
			line += fmt.Sprintf(" %s: %.3f;", query.CourseSources[s].Name, r.Rec.Epoch)
		}
		tie := ""
		if tiedAtNewest(rows, int(id-1)) > 1 {
			tie = "  <- epoch tie, decided by priority"
		}
		p("    %-7d %-12s %.3f   %s%s\n", id, sourceName(w.Source), w.Rec.Epoch, line, tie)
		if w.NoradID != id || w != *best {
			return fmt.Errorf("criterion 6: NORAD %d won by %s, want %s", id, sourceName(w.Source), sourceName(best.Source))
		}
	}
	if len(samples) != 10 {
		return fmt.Errorf("criterion 6: no object with an epoch tie to show priority")
	}
	if st.Conflicts != n || st.Objects != n || st.Superseded != int64(len(srcs)-1)*n {
		return fmt.Errorf("criterion 6: stats %+v", st)
	}

	// 7. Vectorized vs row-at-a-time filter on 100,000 rows.
	cols := query.ColumnsOf("18th SDS", rows[0])
	vec := &query.VecFilter{Input: &query.ColumnScan{Cols: cols}, Pred: query.Greater(query.ColInclination, 80), Label: "inclination > 80°"}
	row := &query.Filter[query.Row]{Input: &query.SeqScan{Src: srcs[0]}, Pred: func(r *query.Row) bool { return r.Rec.Inclination > 80 }}
	var vecIDs, rowIDs []uint32
	if _, err := query.DrainBatches(ctx, vec, func(b *query.Batch) {
		b.ForEach(func(i int) { vecIDs = append(vecIDs, b.NoradID[i]) })
	}); err != nil {
		return fmt.Errorf("criterion 7: %w", err)
	}
	if _, err := query.Drain(ctx, query.Operator[query.Row](row), func(r *query.Row) { rowIDs = append(rowIDs, r.NoradID) }); err != nil {
		return fmt.Errorf("criterion 7: %w", err)
	}
	vecBest, err := best(7*runs, func() error { _, err := query.DrainBatches(ctx, vec, nil); return err })
	if err != nil {
		return err
	}
	rowBest, err := best(7*runs, func() error { _, err := query.Drain(ctx, query.Operator[query.Row](row), nil); return err })
	if err != nil {
		return err
	}
	p("\n[7] filter inclination > 80° over %d rows (best of %d): vectorized %v (%.0f M rows/s), row-at-a-time %v (%.0f M rows/s), %.1f× ; same %d rows: %v\n",
		n, 7*runs, vecBest.Round(time.Microsecond), n/vecBest.Seconds()/1e6, rowBest.Round(time.Microsecond), n/rowBest.Seconds()/1e6,
		rowBest.Seconds()/vecBest.Seconds(), len(vecIDs), slices.Equal(vecIDs, rowIDs))
	if !slices.Equal(vecIDs, rowIDs) {
		return fmt.Errorf("criterion 7: vectorized filter selected %d rows, row-at-a-time %d", len(vecIDs), len(rowIDs))
	}
	p("\nall criteria hold\n")
	return nil
}

// best runs fn k times and returns its fastest run: single cold runs on a
// shared 2-core machine mostly measure the neighbours and the GC.
func best(k int, fn func() error) (time.Duration, error) {
	d := time.Duration(1 << 62)
	for range k {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		d = min(d, time.Since(start))
	}
	return d, nil
}

// tiedAtNewest counts the sources reporting object i's newest epoch.
func tiedAtNewest(rows [][]query.Row, i int) int {
	newest, n := rows[0][i].Epoch, 0
	for s := range rows {
		newest = max(newest, rows[s][i].Epoch)
	}
	for s := range rows {
		if rows[s][i].Epoch == newest {
			n++
		}
	}
	return n
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sourceName(id query.SourceID) string {
	for _, s := range query.CourseSources {
		if s.ID == id {
			return s.Name
		}
	}
	return fmt.Sprintf("source %d", id)
}
