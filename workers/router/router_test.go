package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/router"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func startRouter(t *testing.T, b *bus.Bus) *router.Router {
	nc := bustest.Conn(t, b)
	r := router.New(nc, router.Config{Logger: bustest.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("router did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r
}

func register(t *testing.T, b *bus.Bus, src string) {
	kv, _ := b.JS.KeyValue(context.Background(), schemas.BucketSources)
	if _, err := bus.KVPut(context.Background(), kv, schemas.KVKey(src), &schemas.Source{SourceID: src, Kind: schemas.KindLiveUplink}); err != nil {
		t.Fatal(err)
	}
}

func batch(station string, seqs ...uint64) []byte {
	fb := schemas.FrameBatch{StationID: station}
	for _, s := range seqs {
		f := schemas.Frame{StationID: station, SourceID: station, Sequence: s, SatelliteID: 1, Payload: []byte("p")}
		if s%3 == 0 {
			f.Flags = schemas.FlagEmergency
		}
		fb.Frames = append(fb.Frames, f)
	}
	return schemas.AppendFrameBatch(nil, &fb)
}

// frames reads every frame stored on subjects matching filter (exact, or a
// prefix ending in ">") by sequence: work-queue streams allow no ordered
// consumer next to the real one.
func frames(t *testing.T, b *bus.Bus, stream, filter string) []schemas.Frame {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _ := b.JS.Stream(ctx, stream)
	info, _ := st.Info(ctx)
	var out []schemas.Frame
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if m.Subject != filter && !(strings.HasSuffix(filter, ">") && strings.HasPrefix(m.Subject, strings.TrimSuffix(filter, ">"))) {
			continue
		}
		var fb schemas.FrameBatch
		if err := schemas.Decode(m.Data, &fb); err != nil {
			t.Fatal(err)
		}
		out = append(out, fb.Frames...)
	}
	return out
}

func TestRoutesByPriorityAndRejectsUnregistered(t *testing.T) {
	b := bustest.New(t)
	register(t, b, "gs-1")
	r := startRouter(t, b)
	ctx := context.Background()
	if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", batch("gs-1", 1, 2, 3, 4, 5, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-x", batch("gs-x", 1, 2)); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { i, _, _ := r.Counts(); return i == 8 }, "not all frames handled")
	em := frames(t, b, schemas.StreamRouted, "tlm.routed.emergency.gs-1")
	ro := frames(t, b, schemas.StreamRouted, "tlm.routed.routine.gs-1")
	rej := frames(t, b, schemas.StreamRejected, "tlm.rejected.gs-x")
	if len(em) != 2 || len(ro) != 4 || len(rej) != 2 {
		t.Fatalf("emergency %d routine %d rejected %d, want 2/4/2", len(em), len(ro), len(rej))
	}
	for _, f := range em {
		if f.Priority != schemas.PriorityEmergency || f.SourceKind != schemas.KindLiveUplink {
			t.Fatalf("emergency frame tagged %+v", f)
		}
	}
	if _, routed, rejected := r.Counts(); routed != 6 || rejected != 2 {
		t.Fatalf("counts routed %d rejected %d", routed, rejected)
	}
}

// Sources added and removed at run time through the micro service take
// effect at once; replayed frames are tagged archived_replay.
func TestDynamicRegistrationAndReplay(t *testing.T) {
	b := bustest.New(t)
	r := startRouter(t, b)
	nc := bustest.Conn(t, b)
	req := func(subject string, body string) *nats.Msg {
		m := nats.NewMsg(subject)
		m.Header.Set("Content-Type", "application/json")
		m.Data = []byte(body)
		resp, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := req(router.SubjectAdd, `{"source_id":"replay-gs-9","kind":"archived_replay"}`); resp.Header.Get("Nats-Service-Error") != "" {
		t.Fatalf("add: %s", resp.Header.Get("Nats-Service-Error"))
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return r.Registered("replay-gs-9") }, "registration not seen")
	var list []schemas.Source
	if err := json.Unmarshal(req(router.SubjectList, `{}`).Data, &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if resp := req(router.SubjectAdd, `{"kind":"live_uplink"}`); resp.Header.Get("Nats-Service-Error-Code") != "400" {
		t.Fatal("add without source_id accepted")
	}
	ctx := context.Background()
	if _, err := b.JS.Publish(ctx, "tlm.replay.replay-gs-9", batch("replay-gs-9", 1, 2)); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { _, ro, _ := r.Counts(); return ro == 2 }, "replay not routed")
	for _, f := range frames(t, b, schemas.StreamRouted, "tlm.routed.routine.replay-gs-9") {
		if f.SourceKind != schemas.KindArchivedReplay {
			t.Fatalf("replayed frame tagged %s", f.SourceKind)
		}
	}
	req(router.SubjectRemove, `{"source_id":"replay-gs-9"}`)
	bustest.Eventually(t, 5*time.Second, func() bool { return !r.Registered("replay-gs-9") }, "removal not seen")
	if _, err := b.JS.Publish(ctx, "tlm.replay.replay-gs-9", batch("replay-gs-9", 4)); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { _, _, rej := r.Counts(); return rej == 1 }, "removed source not rejected")
}

func TestMalformedTerminated(t *testing.T) {
	b := bustest.New(t)
	register(t, b, "gs-1")
	r := startRouter(t, b)
	ctx := context.Background()
	for _, g := range [][]byte{[]byte("junk"), {0xc1}} {
		if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", batch("gs-1", 1)); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		i, _, _ := r.Counts()
		return i == 1 && bus.MalformedCount("router") >= 2
	}, "malformed not terminated or good batch not routed")
}

// Two instances on one durable split the work: every frame routed once.
func TestTwoInstancesShareTheDurable(t *testing.T) {
	b := bustest.New(t)
	register(t, b, "gs-1")
	r1, r2 := startRouter(t, b), startRouter(t, b)
	ctx := context.Background()
	const batches = 200
	for i := range batches {
		if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", batch("gs-1", uint64(i*10+1), uint64(i*10+2))); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 15*time.Second, func() bool {
		i1, _, _ := r1.Counts()
		i2, _, _ := r2.Counts()
		return i1+i2 == 2*batches
	}, "not all frames routed")
	got := frames(t, b, schemas.StreamRouted, "tlm.routed.>")
	seen := map[uint64]bool{}
	for _, f := range got {
		if seen[f.Sequence] {
			t.Fatalf("frame %d routed twice", f.Sequence)
		}
		seen[f.Sequence] = true
	}
	if len(seen) != 2*batches {
		t.Fatalf("%d frames routed, want %d", len(seen), 2*batches)
	}
	i1, _, _ := r1.Counts()
	t.Logf("instance 1 routed %d of %d frames", i1, 2*batches)
}

// A batch that mixes sources, missing source ids, frames already tagged and
// frames the registry re-tags is split and tagged frame by frame; a batch
// that needs no change is passed on byte for byte.
func TestRouteTagsFrameByFrame(t *testing.T) {
	b := bustest.New(t)
	register(t, b, "gs-1")
	kv, _ := b.JS.KeyValue(context.Background(), schemas.BucketSources)
	if _, err := bus.KVPut(context.Background(), kv, schemas.KVKey("radar-7"), &schemas.Source{SourceID: "radar-7", Kind: schemas.KindSensor}); err != nil {
		t.Fatal(err)
	}
	r := startRouter(t, b)
	ctx := context.Background()
	mixed := schemas.FrameBatch{StationID: "gs-1", Frames: []schemas.Frame{
		{StationID: "gs-1", Sequence: 1, Payload: []byte("a")}, // no source id, no kind
		{StationID: "gs-1", SourceID: "radar-7", SourceKind: schemas.KindLiveUplink, Sequence: 2, Payload: []byte("b")},
		{StationID: "gs-1", SourceID: "gs-1", SourceKind: schemas.KindLiveUplink, Priority: schemas.PriorityRoutine, Sequence: 3, Payload: []byte("c")},
		{StationID: "gs-1", SourceID: "gs-1", Priority: schemas.PriorityEmergency, Sequence: 4, Payload: []byte("d")}, // no flag
		{StationID: "gs-1", SourceID: "nobody", Sequence: 5, Payload: []byte("e")},
	}}
	if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", schemas.AppendFrameBatch(nil, &mixed)); err != nil {
		t.Fatal(err)
	}
	clean := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-1", Frames: []schemas.Frame{
		{StationID: "gs-1", SourceID: "gs-1", SourceKind: schemas.KindLiveUplink, Priority: schemas.PriorityRoutine, Sequence: 6, Payload: []byte("f")}}})
	if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", clean); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { i, _, _ := r.Counts(); return i == 6 }, "not all frames handled")

	seqs := func(fs []schemas.Frame) (out []uint64) {
		for _, f := range fs {
			out = append(out, f.Sequence)
		}
		slices.Sort(out) // the router handles several inputs at once
		return out
	}
	ro := frames(t, b, schemas.StreamRouted, "tlm.routed.routine.gs-1")
	if got := seqs(ro); !slices.Equal(got, []uint64{1, 3, 6}) {
		t.Fatalf("routine gs-1: %v", got)
	}
	for _, f := range ro {
		if f.SourceID != "gs-1" || f.SourceKind != schemas.KindLiveUplink || f.Priority != schemas.PriorityRoutine {
			t.Fatalf("routine frame tagged %+v", f)
		}
	}
	if em := frames(t, b, schemas.StreamRouted, "tlm.routed.emergency.gs-1"); len(em) != 1 || em[0].Sequence != 4 || em[0].SourceKind != schemas.KindLiveUplink {
		t.Fatalf("emergency gs-1: %+v", em)
	}
	if radar := frames(t, b, schemas.StreamRouted, "tlm.routed.routine.radar-7"); len(radar) != 1 || radar[0].SourceKind != schemas.KindSensor {
		t.Fatalf("radar-7: %+v (the registry's kind wins)", radar)
	}
	if rej := frames(t, b, schemas.StreamRejected, "tlm.rejected.nobody"); len(rej) != 1 || rej[0].Sequence != 5 {
		t.Fatalf("rejected: %+v", rej)
	}
	// The clean batch went on unchanged.
	st, _ := b.JS.Stream(ctx, schemas.StreamRouted)
	info, _ := st.Info(ctx)
	found := false
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil && bytes.Equal(m.Data, clean) {
			found = true
		}
	}
	if !found {
		t.Fatal("the clean batch was re-encoded")
	}
}

// The stations' emergency lane has its own durable: a batch on
// tlm.ingest.emergency.<station> is routed to tlm.routed.emergency.<station>
// even while the routine durable holds a backlog it has not started on.
func TestEmergencyLaneHasItsOwnDurable(t *testing.T) {
	b := bustest.New(t)
	register(t, b, "gs-1")
	ctx := context.Background()
	for i := range 200 { // a routine backlog, stored before the router starts
		if _, err := b.JS.Publish(ctx, "tlm.ingest.gs-1", batch("gs-1", uint64(1000+3*i+1))); err != nil {
			t.Fatal(err)
		}
	}
	emergency := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-1", Frames: []schemas.Frame{
		{StationID: "gs-1", SourceID: "gs-1", Priority: schemas.PriorityEmergency, Flags: schemas.FlagEmergency, Sequence: 3, SatelliteID: 1}}})
	if _, err := b.JS.Publish(ctx, schemas.IngestEmergencySubject("gs-1"), emergency); err != nil {
		t.Fatal(err)
	}
	startRouter(t, b)
	bustest.Eventually(t, 10*time.Second, func() bool {
		return len(frames(t, b, schemas.StreamRouted, "tlm.routed.emergency.gs-1")) == 1
	}, "the emergency batch was not routed")
	for _, durable := range []string{"router", "router-emergency"} {
		c, err := b.JS.Consumer(ctx, schemas.StreamIngest, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := c.Info(ctx)
		want := map[string]string{"router": schemas.IngestRoutine, "router-emergency": schemas.IngestEmergency}[durable]
		if info.Config.FilterSubject != want {
			t.Fatalf("%s filters %q, want %q", durable, info.Config.FilterSubject, want)
		}
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		return len(frames(t, b, schemas.StreamRouted, "tlm.routed.routine.gs-1")) == 200
	}, "the routine backlog was not routed")
}
