package processor

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	"github.com/meridian-ops/meridian/schemas"
)

// courseBatch builds a batch of n frames from two stations in which about a
// third are duplicates (the same satellite frame relayed twice), with
// timestamps out of order.
func courseBatch(r *rand.Rand, n int, seqBase uint64) *schemas.FrameBatch {
	b := &schemas.FrameBatch{StationID: "gs-a", Frames: make([]schemas.Frame, 0, n)}
	payload := make([]byte, 232)
	for len(b.Frames) < n {
		seq := seqBase + uint64(len(b.Frames))
		f := schemas.Frame{StationID: "gs-a", SourceID: "gs-a", SourceKind: schemas.KindLiveUplink, Priority: schemas.PriorityRoutine,
			Sequence: seq, TimestampMs: 1_764_000_000_000 + uint64(r.IntN(100_000)), SatelliteID: uint32(seq%48 + 1), Payload: payload}
		b.Frames = append(b.Frames, f)
		if len(b.Frames) < n && r.IntN(2) == 0 { // relayed by a second station too
			f.StationID, f.SourceID = "gs-b", "gs-b"
			b.Frames = append(b.Frames, f)
		}
	}
	return b
}

// Criterion 1 (also enforced at compile time in header.go).
func TestFrameHeaderIs24Bytes(t *testing.T) {
	if s := unsafe.Sizeof(FrameHeader{}); s != 24 {
		t.Fatalf("FrameHeader is %d bytes", s)
	}
}

// Criteria 2, 3, 4, 7 in behaviour: dedup on header keys only, within and
// across batches; order by timestamp with payloads where they were;
// invalid frames dropped; the output decodes to exactly the expected frames.
func TestProcessDedupsValidatesAndOrders(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := NewCore(CoreConfig{})
	in := courseBatch(r, 1000, 1)
	in.Frames[10].Flags |= schemas.FlagCRCFailed
	in.Frames[0].Flags |= schemas.FlagEmergency
	in.Frames[0].Priority = schemas.PriorityEmergency
	msg := schemas.AppendFrameBatch(nil, in)
	res, err := c.Process(msg)
	if err != nil {
		t.Fatal(err)
	}
	// Reference: first occurrence of each key among valid frames, stable by timestamp.
	seen := map[[2]uint64]bool{}
	var want []schemas.Frame
	dups, invalid := 0, 0
	for _, f := range in.Frames {
		k := [2]uint64{uint64(f.SatelliteID), f.Sequence}
		switch {
		case f.Flags&schemas.FlagCRCFailed != 0:
			invalid++
		case seen[k]:
			dups++
		default:
			seen[k] = true
			want = append(want, f)
		}
	}
	stableSortByTime(want)
	if res.In != 1000 || res.Invalid != invalid || res.Duplicates != dups || res.Out != len(want) || res.Emergency != 1 {
		t.Fatalf("result %+v, want in 1000 invalid %d dups %d out %d emergency 1", res, invalid, dups, len(want))
	}
	if dups < 250 {
		t.Fatalf("test batch has only %d duplicates", dups)
	}
	var got []schemas.Frame
	for _, o := range c.Encode() {
		var fb schemas.FrameBatch
		if err := schemas.Decode(o.Data, &fb); err != nil {
			t.Fatal(err)
		}
		if fb.StationID != string(o.Source) || len(fb.Frames) != o.Frames {
			t.Fatalf("output header %q/%d for %q/%d", fb.StationID, len(fb.Frames), o.Source, o.Frames)
		}
		got = append(got, fb.Frames...)
	}
	// Outputs are per source; compare as one time-ordered stream.
	stableSortByTime(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("processed frames differ from the reference (%d vs %d)", len(got), len(want))
	}
	c.Commit()
	// Across batches: the same frames again are all duplicates.
	res2, err := c.Process(msg)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Out != 0 || res2.Duplicates != 1000-invalid {
		t.Fatalf("second delivery: %+v", res2)
	}
}

func stableSortByTime(fs []schemas.Frame) {
	for i := 1; i < len(fs); i++ { // insertion sort: stable, fine for tests
		for j := i; j > 0 && fs[j].TimestampMs < fs[j-1].TimestampMs; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// Criterion 4: the sort moves indices; payloads stay where decode put them.
func TestSortMovesIndicesNotPayloads(t *testing.T) {
	c := NewCore(CoreConfig{})
	in := courseBatch(rand.New(rand.NewPCG(3, 4)), 200, 1)
	if _, err := c.Process(schemas.AppendFrameBatch(nil, in)); err != nil {
		t.Fatal(err)
	}
	b := c.Batch()
	for i, p := range b.Payload { // arena offsets increase with the input order
		if i > 0 && p.off <= b.Payload[i-1].off {
			t.Fatal("payloads are not in arrival order in the arena")
		}
	}
	o := c.Order()
	for i := 1; i < len(o); i++ {
		if b.Headers[o[i]].TimestampMs < b.Headers[o[i-1]].TimestampMs {
			t.Fatal("order is not by timestamp")
		}
	}
}

// Criterion 5: the arena is back to 0 bytes after every batch.
func TestArenaResetsEveryBatch(t *testing.T) {
	c := NewCore(CoreConfig{})
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 20 {
		if _, err := c.Process(schemas.AppendFrameBatch(nil, courseBatch(r, 500, uint64(i)*1000))); err != nil {
			t.Fatal(err)
		}
		if c.Arena().Used() == 0 {
			t.Fatal("arena empty while a batch is held")
		}
		c.Encode()
		c.Commit()
		c.Batch().reset()
		if c.Arena().Used() != 0 {
			t.Fatalf("arena holds %d bytes after reset", c.Arena().Used())
		}
	}
}

// Rollback: a batch whose outputs were not stored leaves no trace in the
// window, so its redelivery is processed in full.
func TestRollbackForgetsTheBatch(t *testing.T) {
	c := NewCore(CoreConfig{})
	msg := schemas.AppendFrameBatch(nil, courseBatch(rand.New(rand.NewPCG(7, 8)), 300, 1))
	first, _ := c.Process(msg)
	c.Rollback()
	again, _ := c.Process(msg)
	if again != first {
		t.Fatalf("after rollback %+v, first time %+v", again, first)
	}
}

// Forget: a batch whose outputs turned out not to be stored after later
// batches were processed (the processor does not hold the core while
// outputs wait for their acks) is forgotten key by key; the later batch's
// keys stay.
func TestForgetAfterLaterBatches(t *testing.T) {
	c := NewCore(CoreConfig{})
	r := rand.New(rand.NewPCG(11, 12))
	a := schemas.AppendFrameBatch(nil, courseBatch(r, 300, 0))
	b := schemas.AppendFrameBatch(nil, courseBatch(r, 300, 10_000_000))
	first, _ := c.Process(a)
	keys := c.AppendKeys(nil)
	c.Commit()
	if len(keys) != first.Out {
		t.Fatalf("%d keys for %d unique frames", len(keys), first.Out)
	}
	bres, _ := c.Process(b)
	c.Commit()
	c.Forget(keys)
	if again, _ := c.Process(a); again != first {
		t.Fatalf("after Forget %+v, first time %+v", again, first)
	}
	c.Commit()
	if bagain, _ := c.Process(b); bagain.Out != 0 || bagain.Duplicates != bres.In-bres.Invalid {
		t.Fatalf("the later batch's keys were forgotten too: %+v", bagain)
	}
}

// After warm-up a whole batch — decode, validate, dedup, sort, encode —
// allocates nothing.
func TestZeroAllocsPerBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	msgs := make([][]byte, 16)
	for i := range msgs {
		msgs[i] = schemas.AppendFrameBatch(nil, courseBatch(r, 1000, uint64(i)*1_000_000))
	}
	c := NewCore(CoreConfig{})
	i := 0
	step := func() {
		if _, err := c.Process(msgs[i%len(msgs)]); err != nil {
			t.Fatal(err)
		}
		c.Encode()
		c.Commit()
		i++
	}
	for range len(msgs) {
		step() // warm-up: buffers reach their steady sizes
	}
	if a := testing.AllocsPerRun(100, step); a != 0 {
		t.Fatalf("%.1f allocations per batch, want 0", a)
	}
}

func TestMalformedRejected(t *testing.T) {
	c := NewCore(CoreConfig{})
	good := schemas.AppendFrameBatch(nil, courseBatch(rand.New(rand.NewPCG(1, 1)), 3, 1))
	for name, b := range map[string][]byte{
		"garbage":   []byte("nope"),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 1),
		"empty":     schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "x"}),
		"bad kind":  mustMarshal(t, map[string]any{"frames": []any{map[string]any{"source_kind": "telepathy"}}}),
		"negative":  mustMarshal(t, map[string]any{"frames": []any{map[string]any{"sequence": -1}}}),
	} {
		if _, err := c.Process(b); !errors.Is(err, schemas.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if c.win.Len() != 0 {
		t.Fatal("malformed batches changed the window")
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := schemas.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The window forgets the oldest keys first and survives heavy churn.
func TestWindowAgainstModel(t *testing.T) {
	w := NewWindow(64)
	r := rand.New(rand.NewPCG(11, 12))
	var model []Key
	for range 20000 {
		k := Key{uint32(r.IntN(8)), uint64(r.IntN(200))}
		in := false
		for _, m := range model {
			in = in || m == k
		}
		if w.Contains(k) != in {
			t.Fatalf("Contains(%v) = %v, model %v", k, !in, in)
		}
		if w.Insert(k) == in {
			t.Fatalf("Insert(%v) disagrees with the model (held: %v)", k, in)
		}
		if in {
			continue
		}
		model = append(model, k)
		if len(model) > 64 {
			model = model[1:]
		}
		if r.IntN(50) == 0 && len(model) > 3 {
			w.DropNewest(3)
			model = model[:len(model)-3]
		}
		if w.Len() != len(model) {
			t.Fatalf("len %d, model %d", w.Len(), len(model))
		}
	}
}

// FuzzDecode: whatever schemas.Unmarshal (the reference) accepts as a valid
// FrameBatch, the hand-written decoder accepts with the same field values;
// whatever it rejects, the reference does not silently accept differently.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	f.Add(schemas.AppendFrameBatch(nil, courseBatch(r, 3, 1)))
	f.Add(mustMarshalF(&schemas.FrameBatch{StationID: "x", Frames: []schemas.Frame{{Sequence: 1 << 40, Payload: nil}}}))
	tle := schemas.Tle{NoradID: 1, Source: "s"}
	f.Add(schemas.AppendFrameBatch(nil, &schemas.FrameBatch{Frames: []schemas.Frame{{Tle: &tle, Payload: []byte("p")}}}))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := NewCore(CoreConfig{MaxFrames: 16, ArenaBytes: 64, Window: 64})
		var ref schemas.FrameBatch
		refErr := schemas.Decode(msg, &ref)
		_, err := c.Process(msg)
		if err != nil {
			return // stricter than the reference is fine (e.g. unknown kinds)
		}
		if refErr != nil {
			// The hand-written decoder skips what it does not know; the
			// reference may reject types it cannot place. Only a decoded
			// frame count mismatch would be a bug here.
			return
		}
		b := c.Batch()
		if b.Len() != len(ref.Frames) {
			t.Fatalf("%d frames, reference %d", b.Len(), len(ref.Frames))
		}
		for i, fr := range ref.Frames {
			h := b.Headers[i]
			if h.Sequence != fr.Sequence || h.TimestampMs != fr.TimestampMs || h.SatelliteID != fr.SatelliteID ||
				h.Flags != fr.Flags || string(b.bytes(b.Payload[i])) != string(fr.Payload) ||
				string(b.bytes(b.Station[i])) != fr.StationID || string(b.bytes(b.Source[i])) != fr.SourceID {
				t.Fatalf("frame %d differs from the reference", i)
			}
		}
	})
}

func mustMarshalF(v any) []byte {
	b, _ := schemas.Marshal(v)
	return b
}
