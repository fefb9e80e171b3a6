package query

import (
	"container/heap"
	"context"
	"testing"
)

func reportRows(b *testing.B, rowsPerOp int) {
	b.ReportMetric(float64(rowsPerOp)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkMerge5x100k is criterion 5: Resolve(Merge(5 × SeqScan)) over
// 5 × 100,000 sorted records, through the operator API.
func BenchmarkMerge5x100k(b *testing.B) {
	_, srcs := courseSources(b)
	ctx := context.Background()
	b.Run("impl=operators", func(b *testing.B) {
		b.ReportAllocs()
		plan := CatalogMerge(srcs...)
		for b.Loop() {
			n, err := Drain(ctx, Operator[Row](plan), nil)
			if err != nil || n != courseN {
				b.Fatal(n, err)
			}
		}
		reportRows(b, 5*courseN)
	})
	b.Run("impl=container-heap", func(b *testing.B) {
		b.ReportAllocs()
		rows, _ := courseSources(b)
		for b.Loop() {
			if n := plainHeapMerge(rows); n != courseN {
				b.Fatal(n)
			}
		}
		reportRows(b, 5*courseN)
	})
}

// plainHeapMerge is the plain-Go anchor: container/heap over the slices,
// newest epoch (then priority) wins, winners appended to a slice.
type heapItem struct {
	row *Row
	src int
}
type rowHeap []heapItem

func (h rowHeap) Len() int { return len(h) }
func (h rowHeap) Less(i, j int) bool {
	return h[i].row.NoradID < h[j].row.NoradID || h[i].row.NoradID == h[j].row.NoradID && h[i].src < h[j].src
}
func (h rowHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rowHeap) Push(x any)   { *h = append(*h, x.(heapItem)) }
func (h *rowHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func plainHeapMerge(srcs [][]Row) int {
	pos := make([]int, len(srcs))
	h := &rowHeap{}
	for i, s := range srcs {
		if len(s) > 0 {
			heap.Push(h, heapItem{&s[0], i})
		}
	}
	var out []Row
	for h.Len() > 0 {
		it := heap.Pop(h).(heapItem)
		if n := len(out); n > 0 && out[n-1].NoradID == it.row.NoradID {
			if Newer(it.row, &out[n-1]) {
				out[n-1] = *it.row
			}
		} else {
			out = append(out, *it.row)
		}
		pos[it.src]++
		if p := pos[it.src]; p < len(srcs[it.src]) {
			heap.Push(h, heapItem{&srcs[it.src][p], it.src})
		}
	}
	return len(out)
}

// BenchmarkNestedLoopMerge5x1000 is criterion 5's baseline on the subset.
func BenchmarkNestedLoopMerge5x1000(b *testing.B) {
	rows, _ := courseSources(b)
	srcs := make([]Source, len(rows))
	for i := range rows {
		srcs[i] = &SliceSource{Rows: rows[i][:1000], Sorted: true}
	}
	ctx := context.Background()
	b.Run("impl=nested-loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := NestedLoopMerge(ctx, srcs...); err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, 5000)
	})
	b.Run("impl=heap-merge", func(b *testing.B) {
		b.ReportAllocs()
		plan := CatalogMerge(srcs...)
		for b.Loop() {
			if _, err := Drain(ctx, Operator[Row](plan), nil); err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, 5000)
	})
}

// BenchmarkJoin100k is criteria 2 and 3: two 100,000-row sources (source B
// renumbered to even ids, so 50,000 pairs), hash join vs sort-merge join,
// each with its plain-Go anchor.
func BenchmarkJoin100k(b *testing.B) {
	rows, _ := courseSources(b)
	a, bb := rows[0], evenIDs(rows[1])
	sa := &SliceSource{Name: "A", Rows: a, Sorted: true}
	sb := &SliceSource{Name: "B", Rows: bb, Sorted: true}
	ctx := context.Background()
	run := func(name string, op Operator[Joined]) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, err := Drain(ctx, op, nil)
				if err != nil || n != courseN/2 {
					b.Fatal(n, err)
				}
			}
			reportRows(b, 2*courseN)
		})
	}
	run("algo=hash/impl=operators", &HashJoin{Left: &SeqScan{Src: sa}, Right: &SeqScan{Src: sb}})
	run("algo=sort-merge/impl=operators", &SortMergeJoin{Left: &SeqScan{Src: sa}, Right: &SeqScan{Src: sb}})
	b.Run("algo=hash/impl=plain-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := make(map[uint32]int32, len(bb))
			for i := range bb {
				m[bb[i].NoradID] = int32(i)
			}
			n := 0
			for i := range a {
				if _, ok := m[a[i].NoradID]; ok {
					n++
				}
			}
			if n != courseN/2 {
				b.Fatal(n)
			}
		}
		reportRows(b, 2*courseN)
	})
	b.Run("algo=sort-merge/impl=plain-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, i, j := 0, 0, 0
			for i < len(a) && j < len(bb) {
				switch x, y := a[i].NoradID, bb[j].NoradID; {
				case x < y:
					i++
				case x > y:
					j++
				default:
					n++
					i++
					j++
				}
			}
			if n != courseN/2 {
				b.Fatal(n)
			}
		}
		reportRows(b, 2*courseN)
	})
}

// BenchmarkFilter100k is criterion 7: inclination > 80° over 100,000 rows,
// vectorized (column source; row source transposed into batches) against
// the row-at-a-time volcano filter.
func BenchmarkFilter100k(b *testing.B) {
	rows, srcs := courseSources(b)
	ctx := context.Background()
	const want = 55454
	b.Run("impl=vectorized", func(b *testing.B) {
		b.ReportAllocs()
		op := &VecFilter{Input: &ColumnScan{Cols: ColumnsOf("A", rows[0])}, Pred: Greater(ColInclination, 80)}
		for b.Loop() {
			if n, err := DrainBatches(ctx, op, nil); err != nil || n != want {
				b.Fatal(n, err)
			}
		}
		reportRows(b, courseN)
	})
	b.Run("impl=vectorized-from-rows", func(b *testing.B) {
		b.ReportAllocs()
		op := &VecFilter{Input: &VecScan{Src: srcs[0]}, Pred: Greater(ColInclination, 80)}
		for b.Loop() {
			if n, err := DrainBatches(ctx, op, nil); err != nil || n != want {
				b.Fatal(n, err)
			}
		}
		reportRows(b, courseN)
	})
	b.Run("impl=row-at-a-time", func(b *testing.B) {
		b.ReportAllocs()
		op := &Filter[Row]{Input: &SeqScan{Src: srcs[0]}, Pred: func(r *Row) bool { return r.Rec.Inclination > 80 }}
		for b.Loop() {
			if n, err := Drain(ctx, Operator[Row](op), nil); err != nil || n != want {
				b.Fatal(n, err)
			}
		}
		reportRows(b, courseN)
	})
}

// BenchmarkPlan100k is criterion 1's plan: scan, filter, project.
func BenchmarkPlan100k(b *testing.B) {
	_, srcs := courseSources(b)
	b.ReportAllocs()
	plan := &Projection[Row, IDEpoch]{Fn: ProjectIDEpoch, Input: &Filter[Row]{Input: &SeqScan{Src: srcs[0]},
		Pred: func(r *Row) bool { return r.Rec.Inclination > 80 }}}
	for b.Loop() {
		if _, err := Drain(context.Background(), Operator[IDEpoch](plan), nil); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, courseN)
}

// BenchmarkRangeScan100 is the conjunction query's shape: a SeqScan of 100
// consecutive NORAD ids out of 100,000 (binary search into a sorted source)
// with a filter on top.
func BenchmarkRangeScan100(b *testing.B) {
	_, srcs := courseSources(b)
	b.ReportAllocs()
	plan := &Filter[Row]{Input: &SeqScan{Src: srcs[0], Range: KeyRange{From: 43000, To: 43099}},
		Pred: func(r *Row) bool { return r.Rec.MeanMotion > 11.25 }}
	for b.Loop() {
		if n, err := Drain(context.Background(), Operator[Row](plan), nil); err != nil || n != 100 {
			b.Fatal(n, err)
		}
	}
	reportRows(b, 100)
}
