package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

type vecOut struct {
	ID           uint32
	Incl, Motion float64
	Src          SourceID
}

func rowOut(r *Row) vecOut { return vecOut{r.NoradID, r.Rec.Inclination, r.Rec.MeanMotion, r.Source} }

func collectVec(t *testing.T, op VecOperator) []vecOut {
	t.Helper()
	var out []vecOut
	n, err := DrainBatches(context.Background(), op, func(b *Batch) {
		if b.Selected() == 0 {
			t.Fatal("empty batch emitted")
		}
		b.ForEach(func(i int) {
			out = append(out, vecOut{b.NoradID[i], b.Inclination[i], b.MeanMotion[i], b.Source[i]})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(out)) {
		t.Fatalf("DrainBatches counted %d, saw %d", n, len(out))
	}
	return out
}

// TestVecFilterEqualsRowFilter: chains of vectorized filters over column
// and row sources select exactly the rows the row-at-a-time filters do, in
// the same order.
func TestVecFilterEqualsRowFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for iter := range 60 {
		rows := Generate(SourceInfo{ID: SourceID(iter % 5), Name: "g"}, rng.IntN(5000), uint64(iter))
		inclLo, inclHi, mm := rng.Float64()*180, rng.Float64()*180, 14+rng.Float64()*2
		var rowOp Operator[Row] = &Filter[Row]{Pred: func(r *Row) bool { return r.Rec.Inclination > inclLo },
			Input: &SeqScan{Src: &SliceSource{Rows: rows}}}
		rowOp = &Filter[Row]{Input: rowOp, Pred: func(r *Row) bool { return r.Rec.Inclination < inclHi }}
		rowOp = &Filter[Row]{Input: rowOp, Pred: func(r *Row) bool { return r.Rec.MeanMotion > mm }}
		var want []vecOut
		if _, err := Drain(context.Background(), rowOp, func(r *Row) { want = append(want, rowOut(r)) }); err != nil {
			t.Fatal(err)
		}
		chain := func(leaf VecOperator) VecOperator {
			return &VecFilter{Pred: Greater(ColMeanMotion, mm),
				Input: &VecFilter{Pred: Less(ColInclination, inclHi),
					Input: &VecFilter{Pred: Greater(ColInclination, inclLo), Input: leaf}}}
		}
		for name, op := range map[string]VecOperator{
			"columns": chain(&ColumnScan{Cols: ColumnsOf("g", rows)}),
			"rows":    chain(&VecScan{Src: &SliceSource{Rows: rows}}),
		} {
			for run := range 2 {
				got := collectVec(t, op)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("iter %d %s run %d: %d rows, want %d", iter, name, run, len(got), len(want))
				}
				if op.Rows() != int64(len(want)) {
					t.Fatalf("iter %d %s: Rows()=%d want %d", iter, name, op.Rows(), len(want))
				}
			}
		}
	}
}

func TestVecScanBatches(t *testing.T) {
	rows := Generate(CourseSources[0], 2*BatchSize+7, 1)
	var sizes []int
	_, err := DrainBatches(context.Background(), &VecScan{Src: &SliceSource{Rows: rows}}, func(b *Batch) {
		sizes = append(sizes, b.Len)
		if b.Sel != nil {
			t.Fatal("scan batch has a selection vector")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{BatchSize, BatchSize, 7}) {
		t.Fatalf("batch sizes %v", sizes)
	}
}

func TestVecCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &ColumnScan{Cols: ColumnsOf("g", Generate(CourseSources[0], 10, 1))}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.NextBatch(); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
}
