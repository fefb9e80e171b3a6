package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-ops/meridian/store/tle"
)

// randRows makes n rows with ids in [1, keys], few distinct epochs and
// priorities (so ties happen), optionally sorted by id.
func randRows(rng *rand.Rand, n, keys int, src SourceID, sorted bool) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rec := tle.Record{
			NoradID:     uint32(1 + rng.IntN(keys)),
			Epoch:       float64(rng.IntN(3))*50000 + 84 + float64(rng.IntN(4)), // years 2000, 1950s-2050 mix
			Inclination: float64(rng.IntN(180)),
			MeanMotion:  14 + rng.Float64()*2,
			RevNumber:   uint32(i),
		}
		rows[i] = NewRow(&rec, src, uint8(rng.IntN(3)))
	}
	if sorted {
		slices.SortStableFunc(rows, func(a, b Row) int { return cmp.Compare(a.NoradID, b.NoradID) })
	}
	return rows
}

// Reference implementations: plain loops over slices.

func refRange(rows []Row, r KeyRange) []Row {
	var out []Row
	for _, x := range rows {
		if r.Contains(x.NoradID) {
			out = append(out, x)
		}
	}
	return out
}

func refMerge(ins [][]Row) []Row {
	type tagged struct {
		r  Row
		in int
	}
	var all []tagged
	for i, rows := range ins {
		for _, r := range rows {
			all = append(all, tagged{r, i})
		}
	}
	slices.SortStableFunc(all, func(a, b tagged) int {
		return cmp.Or(cmp.Compare(a.r.NoradID, b.r.NoradID), cmp.Compare(a.in, b.in))
	})
	out := make([]Row, len(all))
	for i := range all {
		out[i] = all[i].r
	}
	return out
}

// refResolve picks each id's winner from rows (any order) by scanning all
// of them: the nested-loop definition of the merge.
func refResolve(rows []Row) []Row {
	var out []Row
	for i := range rows {
		win := true
		for j := range rows {
			if i == j || rows[j].NoradID != rows[i].NoradID {
				continue
			}
			a, b := &rows[j], &rows[i]
			if a.Epoch > b.Epoch || a.Epoch == b.Epoch && (a.Priority > b.Priority || a.Priority == b.Priority && j < i) {
				win = false
				break
			}
		}
		if win {
			out = append(out, rows[i])
		}
	}
	slices.SortStableFunc(out, func(a, b Row) int { return cmp.Compare(a.NoradID, b.NoradID) })
	return out
}

type pair struct{ L, R Row }

func refJoin(left, right []Row) []pair {
	var out []pair
	for _, l := range left {
		for _, r := range right {
			if l.NoradID == r.NoradID {
				out = append(out, pair{l, r})
			}
		}
	}
	return out
}

func collectPairs(t *testing.T, op Operator[Joined]) []pair {
	t.Helper()
	var out []pair
	if _, err := Drain(context.Background(), op, func(j *Joined) { out = append(out, pair{*j.Left, *j.Right}) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func scanOf(rows []Row, sorted bool) *SeqScan {
	return &SeqScan{Src: &SliceSource{Name: "t", Rows: rows, Sorted: sorted}}
}

func mustCollect[T any](t *testing.T, op Operator[T]) []T {
	t.Helper()
	out, err := Collect(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalRows(t *testing.T, what string, got, want []Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// genPlan builds a random plan over random sources together with the rows
// the plan must produce, computed by the reference functions.
func genPlan(rng *rand.Rand, depth int) (Operator[Row], []Row, string) {
	if depth == 0 || rng.IntN(4) == 0 {
		sorted := rng.IntN(2) == 0
		rows := randRows(rng, rng.IntN(300), 1+rng.IntN(200), SourceID(rng.IntN(5)), sorted)
		var kr KeyRange
		if rng.IntN(2) == 0 {
			kr = KeyRange{From: uint32(rng.IntN(100)), To: uint32(rng.IntN(200))}
		}
		return &SeqScan{Src: &SliceSource{Name: "r", Rows: rows, Sorted: sorted}, Range: kr},
			refRange(rows, kr), fmt.Sprintf("scan(%d,%v,%v)", len(rows), sorted, kr)
	}
	switch rng.IntN(6) {
	case 0:
		in, want, d := genPlan(rng, depth-1)
		lim := float64(rng.IntN(180))
		var out []Row
		for _, r := range want {
			if r.Rec.Inclination > lim {
				out = append(out, r)
			}
		}
		return &Filter[Row]{Input: in, Pred: func(r *Row) bool { return r.Rec.Inclination > lim }},
			out, "filter(" + d + ")"
	case 1:
		in, want, d := genPlan(rng, depth-1)
		c := func(a, b *Row) int { return cmp.Compare(a.Epoch, b.Epoch) }
		out := slices.Clone(want)
		slices.SortStableFunc(out, func(a, b Row) int { return c(&a, &b) })
		return &Sort[Row]{Input: in, Cmp: c}, out, "sort(" + d + ")"
	case 2:
		in, want, d := genPlan(rng, depth-1)
		n := rng.IntN(50) - 5
		out := want
		if n >= 0 && len(out) > n {
			out = out[:n]
		}
		return &Limit[Row]{Input: in, N: int64(n)}, out, "limit(" + d + ")"
	case 3:
		in, want, d := genPlan(rng, depth-1)
		out := make([]Row, len(want))
		for i, r := range want {
			r.Rec.RevNumber++
			out[i] = r
		}
		return &Projection[Row, Row]{Input: in, Fn: func(dst, src *Row) { *dst = *src; dst.Rec.RevNumber++ }},
			out, "project(" + d + ")"
	default: // merge, maybe resolved, of sorted leaves
		k := 1 + rng.IntN(5)
		ins := make([]Operator[Row], k)
		wants := make([][]Row, k)
		for i := range ins {
			rows := randRows(rng, rng.IntN(200), 1+rng.IntN(100), SourceID(i), true)
			ins[i], wants[i] = scanOf(rows, true), rows
		}
		m := &Merge{Inputs: ins}
		if rng.IntN(2) == 0 {
			return m, refMerge(wants), fmt.Sprintf("merge%d", k)
		}
		return &Resolve{Input: m}, refResolve(refMerge(wants)), fmt.Sprintf("resolve(merge%d)", k)
	}
}

// TestRandomPlans runs random operator trees against the reference
// implementations, twice each (re-Open must reset every operator).
func TestRandomPlans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	total := 0
	for i := range 400 {
		plan, want, desc := genPlan(rng, 4)
		total += len(want)
		for run := range 2 {
			got := mustCollect(t, plan)
			equalRows(t, fmt.Sprintf("plan %d run %d %s", i, run, desc), got, want)
			if plan.Rows() != int64(len(want)) {
				t.Fatalf("plan %d %s: Rows()=%d want %d", i, desc, plan.Rows(), len(want))
			}
		}
	}
	if total < 10000 { // the generator must produce real work, not empty plans
		t.Fatalf("random plans produced only %d rows", total)
	}
}

// TestMergeModel checks Merge row by row against the reference, with the
// heap invariant verified after every Next.
func TestMergeModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 200 {
		k := 1 + rng.IntN(8)
		ins := make([]Operator[Row], k)
		wants := make([][]Row, k)
		for i := range ins {
			rows := randRows(rng, rng.IntN(100), 1+rng.IntN(60), SourceID(i), true)
			ins[i], wants[i] = scanOf(rows, true), rows
		}
		m := &Merge{Inputs: ins}
		want := refMerge(wants)
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if err := m.Check(); err != nil {
				t.Fatalf("iter %d row %d: %v", iter, i, err)
			}
			r, err := m.Next()
			if err != nil {
				t.Fatal(err)
			}
			if r == nil {
				if i != len(want) {
					t.Fatalf("iter %d: %d rows, want %d", iter, i, len(want))
				}
				break
			}
			if i >= len(want) || *r != want[i] {
				t.Fatalf("iter %d row %d: got %+v", iter, i, *r)
			}
		}
		m.Close()
	}
}

// TestResolveStatsModel checks the conflict counters against a count
// computed from the reference.
func TestResolveStatsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 100 {
		var all [][]Row
		var ins []Operator[Row]
		for i := range 1 + rng.IntN(5) {
			rows := randRows(rng, rng.IntN(150), 80, SourceID(i), true)
			all, ins = append(all, rows), append(ins, scanOf(rows, true))
		}
		merged := refMerge(all)
		g := &Resolve{Input: &Merge{Inputs: ins}}
		got := mustCollect(t, g)
		equalRows(t, "resolve", got, refResolve(merged))
		var want ResolveStats
		for _, w := range got {
			want.Objects++
			want.Wins[w.Source]++
			size, same := 0, 0
			for _, r := range merged {
				if r.NoradID == w.NoradID {
					size++
					if r.Epoch == w.Epoch {
						same++
					}
				}
			}
			if size > 1 {
				want.Conflicts++
				want.Superseded += int64(size - 1)
				if same > 1 {
					want.PriorityTies++
				}
			}
		}
		if g.Stats() != want {
			t.Fatalf("iter %d: stats %+v want %+v", iter, g.Stats(), want)
		}
	}
}

// TestJoinsAgreeWithNestedLoop: hash join, sort-merge join and the
// nested-loop join all equal the reference (with duplicates on both sides).
func TestJoinsAgreeWithNestedLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 200 {
		keys := 1 + rng.IntN(100)
		left := randRows(rng, rng.IntN(120), keys, 1, true)
		right := randRows(rng, rng.IntN(120), keys, 2, iter%2 == 0)
		want := refJoin(left, right)
		nl := &NestedLoopJoin{Left: scanOf(left, true), Right: scanOf(right, false)}
		hj := &HashJoin{Left: scanOf(left, true), Right: scanOf(right, false)}
		for run := range 2 {
			for _, c := range []struct {
				name string
				op   Operator[Joined]
			}{{"nested-loop", nl}, {"hash", hj}} {
				if got := collectPairs(t, c.op); !slices.Equal(got, want) {
					t.Fatalf("iter %d run %d %s join: %d pairs, want %d", iter, run, c.name, len(got), len(want))
				}
			}
		}
		if nl.Comparisons() != int64(len(left)*len(right)) {
			t.Fatalf("nested loop compared %d pairs, want %d", nl.Comparisons(), len(left)*len(right))
		}
		if iter%2 == 0 { // right sorted: sort-merge join applies, same order
			smj := &SortMergeJoin{Left: scanOf(left, true), Right: scanOf(right, true)}
			if got := collectPairs(t, smj); !slices.Equal(got, want) {
				t.Fatalf("iter %d sort-merge join: %d pairs, want %d", iter, len(got), len(want))
			}
		}
	}
}

func TestUnsortedInputs(t *testing.T) {
	mk := func(ids ...uint32) *SeqScan {
		rows := make([]Row, len(ids))
		for i, id := range ids {
			rows[i].NoradID = id
		}
		return scanOf(rows, false)
	}
	ctx := context.Background()
	cases := map[string]func() error{
		"merge": func() error {
			_, err := Drain(ctx, Operator[Row](&Merge{Inputs: []Operator[Row]{mk(1, 5, 3), mk(2)}}), nil)
			return err
		},
		"resolve": func() error {
			_, err := Drain(ctx, Operator[Row](&Resolve{Input: mk(1, 2, 2, 1)}), nil)
			return err
		},
		"sort-merge left": func() error {
			_, err := Drain(ctx, Operator[Joined](&SortMergeJoin{Left: mk(1, 3, 2), Right: mk(1, 2, 3)}), nil)
			return err
		},
		"sort-merge right": func() error {
			_, err := Drain(ctx, Operator[Joined](&SortMergeJoin{Left: mk(1, 2, 3), Right: mk(1, 3, 2)}), nil)
			return err
		},
	}
	for name, run := range cases {
		if err := run(); !errors.Is(err, ErrUnsorted) {
			t.Errorf("%s: got %v, want ErrUnsorted", name, err)
		}
	}
}

func TestNotOpenAndCancel(t *testing.T) {
	s := scanOf(randRows(rand.New(rand.NewPCG(1, 1)), 5000, 100, 1, false), false)
	if _, err := s.Next(); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Next before Open: %v", err)
	}
	for _, op := range []interface{ Next() (*Row, error) }{&Merge{}, &Resolve{}, &Sort[Row]{}} {
		if _, err := op.Next(); !errors.Is(err, ErrNotOpen) {
			t.Fatalf("%T Next before Open: %v", op, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Filter[Row]{Input: s, Pred: func(*Row) bool { return false }}
	if err := f.Open(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := f.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	f.Close()
	srt := &Sort[Row]{Input: s, Cmp: func(a, b *Row) int { return 0 }}
	if err := srt.Open(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("sort over cancelled scan: %v", err)
	}
}

func TestSliceSourceRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for range 200 {
		sorted := rng.IntN(2) == 0
		rows := randRows(rng, rng.IntN(50), 40, 1, sorted)
		kr := KeyRange{From: uint32(rng.IntN(45)), To: uint32(rng.IntN(45))}
		got := mustCollect[Row](t, &SeqScan{Src: &SliceSource{Rows: rows, Sorted: sorted}, Range: kr})
		equalRows(t, fmt.Sprintf("range %v sorted=%v", kr, sorted), got, refRange(rows, kr))
	}
}

func TestExplain(t *testing.T) {
	rows := Generate(CourseSources[0], 1000, 1)
	plan := &Limit[IDEpoch]{N: 10, Input: &Projection[Row, IDEpoch]{Fn: ProjectIDEpoch, Label: "norad_id, epoch",
		Input: &Filter[Row]{Label: "inclination > 80", Pred: func(r *Row) bool { return r.Rec.Inclination > 80 },
			Input: &SeqScan{Src: &SliceSource{Name: "18th SDS", Rows: rows}}}}}
	if _, err := Drain(context.Background(), Operator[IDEpoch](plan), nil); err != nil {
		t.Fatal(err)
	}
	out := ExplainString(plan)
	for _, want := range []string{"Limit 10  rows=10", "└─ Projection (norad_id, epoch)  rows=10",
		"   └─ Filter inclination > 80  rows=10", "SeqScan 18th SDS  rows="} {
		if !strings.Contains(out, want) {
			t.Fatalf("explain lacks %q:\n%s", want, out)
		}
	}
}

func TestOrderEpoch(t *testing.T) {
	if !(OrderEpoch(99365.5) < OrderEpoch(1.25)) {
		t.Fatal("1999 day 365 must order before 2000 day 1")
	}
	if !(OrderEpoch(56001) > OrderEpoch(57001)) {
		t.Fatal("2056 must order after 1957")
	}
	if got := OrderEpoch(20177.5); got != 2020177.5 {
		t.Fatalf("OrderEpoch(20177.5) = %v", got)
	}
}

// TestNestedLoopMergeModel: the anti-join baseline, Resolve(Merge) and the
// reference agree on random sources with duplicate ids and tied epochs.
func TestNestedLoopMergeModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for iter := range 100 {
		var all [][]Row
		var srcs []Source
		for i := range 1 + rng.IntN(5) {
			rows := randRows(rng, rng.IntN(60), 40, SourceID(i), true)
			all, srcs = append(all, rows), append(srcs, &SliceSource{Rows: rows, Sorted: true})
		}
		want := refResolve(refMerge(all))
		got, cmps, err := NestedLoopMerge(context.Background(), srcs...)
		if err != nil {
			t.Fatal(err)
		}
		equalRows(t, fmt.Sprintf("iter %d nested-loop merge", iter), got, want)
		equalRows(t, fmt.Sprintf("iter %d resolve", iter), mustCollect[Row](t, CatalogMerge(srcs...)), want)
		if n := len(refMerge(all)); len(want) > 0 && (cmps == 0 || cmps > int64(n*n)) {
			t.Fatalf("iter %d: %d comparisons for %d rows", iter, cmps, n)
		}
	}
}

func TestConcatAndAntiJoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 100 {
		a := randRows(rng, rng.IntN(50), 30, 1, false)
		b := randRows(rng, rng.IntN(50), 30, 2, false)
		c := &Concat[Row]{Inputs: []Operator[Row]{scanOf(a, false), scanOf(nil, false), scanOf(b, false)}}
		equalRows(t, "concat", mustCollect[Row](t, c), append(slices.Clone(a), b...))
		anti := &NestedLoopJoin{Left: scanOf(a, false), Right: scanOf(b, false), Anti: true}
		var want []Row
		for _, l := range a {
			if !slices.ContainsFunc(b, func(r Row) bool { return r.NoradID == l.NoradID }) {
				want = append(want, l)
			}
		}
		var got []Row
		if _, err := Drain(context.Background(), Operator[Joined](anti), func(j *Joined) {
			if j.Right != nil {
				t.Fatal("anti-join emitted a right row")
			}
			got = append(got, *j.Left)
		}); err != nil {
			t.Fatal(err)
		}
		equalRows(t, "anti-join", got, want)
	}
}
