package query

import (
	"context"
	"testing"
)

// TestNoPerRowAllocations: once warmed up, a run of each operator allocates
// a constant handful of objects (cursors from Open), not one per row.
func TestNoPerRowAllocations(t *testing.T) {
	rows, _ := courseSources(t)
	const n = 5000
	src := func(i int) *SliceSource { return &SliceSource{Rows: rows[i][:n], Sorted: true} }
	ctx := context.Background()
	var srcs []Source
	for i := range rows {
		srcs = append(srcs, src(i))
	}
	cases := map[string]func() error{
		"merge+resolve": func() error { _, err := Drain(ctx, Operator[Row](CatalogMerge(srcs...)), nil); return err },
		"filter+project": func() error {
			_, err := Drain(ctx, Operator[IDEpoch](&Projection[Row, IDEpoch]{Fn: ProjectIDEpoch,
				Input: &Filter[Row]{Input: &SeqScan{Src: src(0)}, Pred: func(r *Row) bool { return r.Rec.Inclination > 80 }}}), nil)
			return err
		},
		"vecfilter": func() error {
			_, err := DrainBatches(ctx, &VecFilter{Input: &VecScan{Src: src(0)}, Pred: Greater(ColInclination, 80)}, nil)
			return err
		},
	}
	hj := &HashJoin{Left: &SeqScan{Src: src(0)}, Right: &SeqScan{Src: src(1)}}
	cases["hash join (reused)"] = func() error { _, err := Drain(ctx, Operator[Joined](hj), nil); return err }
	smj := &SortMergeJoin{Left: &SeqScan{Src: src(0)}, Right: &SeqScan{Src: src(1)}}
	cases["sort-merge join (reused)"] = func() error { _, err := Drain(ctx, Operator[Joined](smj), nil); return err }
	srt := &Sort[Row]{Input: &SeqScan{Src: src(2)}, Cmp: func(a, b *Row) int { return int(b.NoradID) - int(a.NoradID) }}
	cases["sort (reused)"] = func() error { _, err := Drain(ctx, Operator[Row](srt), nil); return err }
	for name, run := range cases {
		if err := run(); err != nil { // warm up reused buffers
			t.Fatal(name, err)
		}
		var err error
		allocs := testing.AllocsPerRun(3, func() { err = run() })
		if err != nil {
			t.Fatal(name, err)
		}
		if allocs > 20 {
			t.Errorf("%s: %.0f allocations for %d rows per input", name, allocs, n)
		}
	}
}
