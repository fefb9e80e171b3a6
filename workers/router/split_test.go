package router

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"

	"github.com/meridian-ops/meridian/schemas"
)

// BenchmarkSplit is the router's per-batch work without the bus: a
// 100-frame gateway batch from a registered station (passed on as it
// came), and the same batch needing every frame re-tagged.
func BenchmarkSplit(b *testing.B) {
	r := New(nil, Config{})
	reg := map[string]schemas.Source{schemas.KVKey("gs-svalbard"): {SourceID: "gs-svalbard", Kind: schemas.KindLiveUplink}}
	r.sources.Store(&reg)
	for _, tc := range []struct {
		name string
		kind schemas.SourceKind
	}{{"unchanged", schemas.KindLiveUplink}, {"retagged", ""}} {
		fb := &schemas.FrameBatch{StationID: "gs-svalbard"}
		for i := range 100 {
			f := schemas.Frame{StationID: "gs-svalbard", SourceID: "gs-svalbard", SourceKind: tc.kind,
				Sequence: uint64(i), SatelliteID: 7, Payload: make([]byte, 232)}
			if tc.kind != "" {
				f.Priority = schemas.PriorityRoutine
			}
			fb.Frames = append(fb.Frames, f)
		}
		data := schemas.AppendFrameBatch(nil, fb)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				sc := scratchPool.Get().(*scratch)
				if _, err := r.split(context.Background(), sc, data, schemas.KindLiveUplink); err != nil {
					b.Fatal(err)
				}
				sc.release()
			}
		})
	}
}

// A malformed input routed together with good ones leaves no frame behind
// in the merged outputs: its partial split is rolled back.
func TestSplitRollbackOfMalformedInput(t *testing.T) {
	r := New(nil, Config{})
	reg := map[string]schemas.Source{schemas.KVKey("gs-1"): {SourceID: "gs-1", Kind: schemas.KindLiveUplink},
		schemas.KVKey("gs-2"): {SourceID: "gs-2", Kind: schemas.KindLiveUplink}}
	r.sources.Store(&reg)
	good := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-1", Frames: []schemas.Frame{
		{StationID: "gs-1", Sequence: 1, Payload: []byte("a")}, {StationID: "gs-1", Sequence: 2, Flags: schemas.FlagEmergency}}})
	// gs-1's frame 3 is fine, gs-2's frame (a new output) too, frame 5 has an unknown priority.
	bad, err := schemas.Marshal(map[string]any{"station_id": "gs-1", "frames": []any{
		map[string]any{"station_id": "gs-1", "sequence": 3},
		map[string]any{"station_id": "gs-2", "sequence": 4},
		map[string]any{"station_id": "gs-1", "sequence": 5, "priority": "urgent"}}})
	if err != nil {
		t.Fatal(err)
	}
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	if _, err := r.split(context.Background(), sc, good, schemas.KindLiveUplink); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, o := range sc.active() {
		before[o.subject] = string(o.frames) + "/" + strconv.Itoa(o.n)
	}
	m := sc.mark()
	if _, err := r.split(context.Background(), sc, bad, schemas.KindLiveUplink); !errors.Is(err, schemas.ErrMalformed) {
		t.Fatalf("bad input: %v", err)
	}
	if len(sc.active()) != 3 {
		t.Fatalf("%d outputs before the rollback, want 3 (the bad input's frames were split)", len(sc.active()))
	}
	sc.rollback(m)
	after := map[string]string{}
	for _, o := range sc.active() {
		after[o.subject] = string(o.frames) + "/" + strconv.Itoa(o.n)
	}
	if !maps.Equal(before, after) || len(after) != 2 {
		t.Fatalf("after the rollback %d outputs differ from the good input's %d", len(after), len(before))
	}
}
