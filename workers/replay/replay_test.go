package replay_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/replay"
	"github.com/meridian-ops/meridian/workers/router"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

// One station's window is re-played onto tlm.replay.replay-<station>, the
// router takes it as archived_replay, and 1x keeps the original spacing.
func TestReplayOneStationThroughTheRouter(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	r := router.New(bustest.Conn(t, b), router.Config{Logger: bustest.Logger(t)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-r.Ready()

	since := time.Now().Add(-time.Second)
	pub := func(station string, seq uint64) {
		data := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: station, Frames: []schemas.Frame{
			{StationID: station, SourceID: station, SourceKind: schemas.KindLiveUplink, Sequence: seq, SatelliteID: 3}}})
		if _, err := b.JS.Publish(ctx, schemas.IngestSubject(station), data); err != nil {
			t.Fatal(err)
		}
	}
	first := time.Now()
	pub("gs-a", 1)
	pub("gs-b", 1)
	bustest.Eventually(t, 5*time.Second, func() bool { return time.Since(first) > 200*time.Millisecond }, "")
	pub("gs-a", 2)
	span := time.Since(first)

	began := time.Now()
	res, err := replay.Run(ctx, bustest.Conn(t, b), replay.Config{Since: since, Station: "gs-a", Speed: 1, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Batches != 2 || res.Frames != 2 {
		t.Fatalf("replayed %+v, want 2 batches of gs-a", res)
	}
	if took := time.Since(began); took < span-50*time.Millisecond {
		t.Fatalf("1x replay took %v, less than the original %v", took, span)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { _, routed, _ := r.Counts(); return routed >= 2 }, "replayed frames not routed")
	st, _ := b.JS.Stream(ctx, schemas.StreamRouted)
	m, err := st.GetLastMsgForSubject(ctx, "tlm.routed.routine.replay-gs-a")
	if err != nil {
		t.Fatal(err)
	}
	var fb schemas.FrameBatch
	if err := schemas.Decode(m.Data, &fb); err != nil || fb.Frames[0].SourceKind != schemas.KindArchivedReplay || fb.Frames[0].SourceID != "replay-gs-a" {
		t.Fatalf("routed replay %+v: %v", fb, err)
	}
	if _, err := replay.Run(ctx, bustest.Conn(t, b), replay.Config{Since: time.Now().Add(time.Hour)}); err != replay.ErrNothing {
		t.Fatalf("empty window: %v", err)
	}
}
