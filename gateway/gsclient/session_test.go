package gsclient_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// ingested reads every FrameBatch published for station so far, checking
// each carries a Nats-Msg-Id.
func ingested(t *testing.T, js jetstream.JetStream, station string, want func([]schemas.Frame) bool) []schemas.Frame {
	t.Helper()
	ctx := testCtx(t)
	var frames []schemas.Frame
	cons, err := js.OrderedConsumer(ctx, schemas.StreamIngest, jetstream.OrderedConsumerConfig{
		FilterSubjects: schemas.IngestSubjects(station)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !want(frames) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d frames ingested for %s", len(frames), station)
		}
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if m.Headers().Get(jetstream.MsgIDHeader) == "" {
				t.Errorf("batch without Nats-Msg-Id")
			}
			var fb schemas.FrameBatch
			if err := schemas.Decode(m.Data(), &fb); err != nil {
				t.Fatal(err)
			}
			if fb.StationID != station {
				t.Errorf("batch station %q", fb.StationID)
			}
			for i, f := range fb.Frames[:len(fb.Frames)-1] {
				if f.Emergency() {
					t.Errorf("emergency frame %d of %d held in a batch instead of published at once", i, len(fb.Frames))
				}
			}
			frames = append(frames, fb.Frames...)
		}
	}
	return frames
}

// Criterion 4 end to end: the TLE refresh runs when the session connects
// (503, then 200 after the backoff) and again every TLERefresh on the fake
// clock; forwarded frames on tlm.ingest.<station> carry the current TLE.
// The station is registered in meridian_sources.
func TestTLERefreshRidesOnPublishedFrames(t *testing.T) {
	b := bustest.New(t)
	api := newTLEAPI(t, status(503))
	sim := startSim(t, stationsim.Config{Rate: 200, Satellites: []uint32{25544}, EmergencyRatio: 0.2, Seed: 1})
	clk := clock.NewFake(epoch)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	c, err := gsclient.New(b.JS, bustest.Logger(t), gsclient.Config{Station: "gs-svalbard", Addr: sim.Addr(),
		NoradID: 25544, APIBase: api.srv.URL}, gsclient.WithClock(clk), gsclient.WithHTTPClient(api.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// 503: the fetch waits its backoff on the fake clock.
	pend, err := clk.WaitPending(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pend[0] > time.Second || api.requests.Load() != 1 {
		t.Fatalf("after a 503: pending %v, %d requests", pend, api.requests.Load())
	}
	clk.Advance(time.Second)
	bustest.Eventually(t, 5*time.Second, func() bool { return c.TLE() != nil }, "no TLE after 503 then 200")
	first := c.TLE().Epoch

	// The next refresh is due TLERefresh (10 min) after the first attempt.
	pend, err = clk.WaitPending(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pend[0] > 10*time.Minute || pend[0] < 9*time.Minute {
		t.Fatalf("next refresh in %v, want about 10 min", pend[0])
	}
	api.epoch.Store(26330.25)
	frames := ingested(t, b.JS, "gs-svalbard", func(fs []schemas.Frame) bool {
		return len(fs) > 0 && fs[len(fs)-1].Tle != nil
	})
	clk.Advance(10 * time.Minute)
	bustest.Eventually(t, 5*time.Second, func() bool { return c.TLE().Epoch == 26330.25 }, "TLE not refreshed after 10 min")
	if api.requests.Load() != 3 {
		t.Fatalf("%d API requests, want 3 (503, 200, refresh)", api.requests.Load())
	}
	frames = ingested(t, b.JS, "gs-svalbard", func(fs []schemas.Frame) bool {
		return len(fs) > 0 && fs[len(fs)-1].Tle != nil && fs[len(fs)-1].Tle.Epoch == 26330.25
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	sawFirst, emergencies := false, 0
	lastSeq := map[schemas.Priority]uint64{}
	for i, f := range frames {
		if f.StationID != "gs-svalbard" || f.SourceID != "gs-svalbard" || f.SourceKind != schemas.KindLiveUplink ||
			f.SatelliteID != 25544 || len(f.Payload) != 64 {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if (f.Flags&schemas.FlagEmergency != 0) != (f.Priority == schemas.PriorityEmergency) {
			t.Fatalf("frame %d: flags %#x but priority %s", i, f.Flags, f.Priority)
		}
		if f.Priority == schemas.PriorityEmergency {
			emergencies++
		}
		if f.Tle != nil && f.Tle.Epoch == first {
			sawFirst = true
		}
		// In order within each lane: an emergency frame goes ahead of the
		// routine frames batched with it.
		if prev, ok := lastSeq[f.Priority]; ok && f.Sequence <= prev {
			t.Fatalf("frame %d: %s sequence %d after %d", i, f.Priority, f.Sequence, prev)
		}
		lastSeq[f.Priority] = f.Sequence
	}
	if !sawFirst || emergencies == 0 {
		t.Errorf("frames with the first TLE seen: %v; emergency frames %d", sawFirst, emergencies)
	}
	var src schemas.Source
	kv, _ := b.JS.KeyValue(testCtx(t), schemas.BucketSources)
	if ok, err := bus.KVGet(testCtx(t), kv, "gs-svalbard", &src); err != nil || !ok ||
		src.Kind != schemas.KindLiveUplink || src.StationID != "gs-svalbard" {
		t.Fatalf("source registry: %+v found=%v err=%v", src, ok, err)
	}
}

// Criterion 5: the downstream never takes a frame, yet the read loop reads
// every frame the station sends; the hand-off keeps what fits and drops
// and counts the rest.
func TestFullHandoffDropsWithoutBlockingTheReadLoop(t *testing.T) {
	const sent = 3000
	sim := startSim(t, stationsim.Config{Rate: -1, MaxFrames: sent})
	out := make(chan schemas.Frame, 8) // nobody reads it: a stalled pipeline
	ctx, cancel := context.WithCancel(testCtx(t))
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-flood", Addr: sim.Addr(), QueueSize: 8},
		gsclient.WithOutput(out))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	bustest.Eventually(t, 10*time.Second, func() bool { return c.Stats().FramesRead == sent },
		"read loop stalled at %d of %d frames behind a full hand-off", c.Stats().FramesRead, sent)
	st := c.Stats()
	if st.FramesForwarded != 8 || st.FramesDropped != sent-8 {
		t.Fatalf("forwarded %d dropped %d, want 8 and %d", st.FramesForwarded, st.FramesDropped, sent-8)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Criterion 6: shutdown arrives while a 60 KB frame is half sent. The
// client reads the frame to its end, publishes it, sends GOODBYE (the
// station sees it), closes, and publishes Disconnecting then Stopped.
func TestShutdownFinishesFrameInFlight(t *testing.T) {
	b := bustest.New(t)
	sim := startSim(t, stationsim.Config{Rate: 100})
	rec := &recorder{}
	ctx, cancel := context.WithCancel(testCtx(t))
	c, err := gsclient.New(b.JS, bustest.Logger(t), gsclient.Config{Station: "gs-bigframe", Addr: sim.Addr()},
		gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	bustest.Eventually(t, 5*time.Second, func() bool { return c.Stats().FramesRead >= 3 }, "no frames")

	split := sim.HoldLargeFrame(60_000)
	<-split.Sent()
	// The client has read every earlier frame and is inside the large one.
	bustest.Eventually(t, 5*time.Second, func() bool {
		st := c.Stats()
		return st.MidFrame && st.FramesRead == sim.Stats().FramesSent
	}, "client not inside the large frame")
	cancel() // shutdown while the second half has not been sent
	split.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-split.Done()

	frames := ingested(t, b.JS, "gs-bigframe", func(fs []schemas.Frame) bool {
		return len(fs) > 0 && fs[len(fs)-1].Sequence == split.Header.Sequence
	})
	last := frames[len(frames)-1]
	if !bytes.Equal(last.Payload, split.Body) {
		t.Fatalf("large frame arrived with %d bytes, want %d intact", len(last.Payload), len(split.Body))
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return sim.Stats().Goodbyes == 1 }, "station saw no GOODBYE")
	got := phases(rec.all())
	if !slices.Equal(got[len(got)-2:], []string{"disconnecting", "stopped"}) {
		t.Fatalf("transitions end with %v", got)
	}
	var st schemas.SessionState
	kv, _ := b.JS.KeyValue(testCtx(t), schemas.BucketSessions)
	if ok, err := bus.KVGet(testCtx(t), kv, "gs-bigframe", &st); err != nil || !ok || st.Phase != schemas.PhaseStopped {
		t.Fatalf("KV state %+v found=%v err=%v, want stopped", st, ok, err)
	}
}

// Shutdown while idle at a frame boundary returns promptly with GOODBYE.
func TestShutdownAtFrameBoundary(t *testing.T) {
	sim := startSim(t, stationsim.Config{MaxFrames: 2, Rate: 1000})
	out := make(chan schemas.Frame, 16)
	ctx, cancel := context.WithCancel(testCtx(t))
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-idle", Addr: sim.Addr()}, gsclient.WithOutput(out))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	bustest.Eventually(t, 5*time.Second, func() bool { return c.Stats().FramesRead == 2 }, "no frames")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return sim.Stats().Goodbyes == 1 }, "station saw no GOODBYE")
	if c.State().Phase != schemas.PhaseStopped {
		t.Fatalf("state %s", c.State().Phase)
	}
}

// A station that goes silent is dropped after ReadTimeout and redialled;
// the session had delivered frames, so the backoff starts again at 1 s.
func TestReadTimeoutReconnects(t *testing.T) {
	sim := startSim(t, stationsim.Config{MaxFrames: 3, Rate: 1000})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	rec := &recorder{}
	connects := 0
	rec.on = func(s schemas.SessionState) {
		if s.Phase == schemas.PhaseConnected {
			if connects++; connects == 2 {
				cancel()
			}
		}
	}
	clk := clock.NewAuto(epoch)
	out := make(chan schemas.Frame, 16)
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-silent", Addr: sim.Addr(),
		ReadTimeout: 100 * time.Millisecond}, gsclient.WithClock(clk), gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := phases(rec.all())[:5]; !slices.Equal(got, []string{"connecting/0", "connected", "reconnecting/1", "connecting/1", "connected"}) {
		t.Fatalf("transitions %v", got)
	}
	if c.Stats().FramesRead < 3 {
		t.Fatalf("read %d frames", c.Stats().FramesRead)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	out := make(chan schemas.Frame)
	for _, cfg := range []gsclient.Config{{}, {Station: "x"}, {Station: "x", Addr: "nohostport"}} {
		if _, err := gsclient.New(nil, nil, cfg, gsclient.WithOutput(out)); !errors.Is(err, gsclient.ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := gsclient.New(nil, nil, gsclient.Config{Station: "x", Addr: "127.0.0.1:1"}); !errors.Is(err, gsclient.ErrConfig) {
		t.Errorf("no bus and no output accepted: %v", err)
	}
}

// A station breaking the framing (a length over 65,536) or sending frames
// that are not mf1: the bad mf1 frame is counted and skipped, the
// oversized length ends the session and the client reconnects.
func TestProtocolErrorsFromStation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := 0; ; i++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if i == 0 {
				good := schemas.AppendMF1(nil, schemas.MF1Header{Sequence: 1, SatelliteID: 5}, []byte("ok"))
				_ = schemas.WriteFrame(conn, good)
				_ = schemas.WriteFrame(conn, []byte("not an mf1 frame"))
				_ = schemas.WriteFrame(conn, schemas.AppendMF1(nil, schemas.MF1Header{Sequence: 2, SatelliteID: 5}, []byte("ok")))
				_, _ = conn.Write(binary.BigEndian.AppendUint32(nil, 70_000)) // protocol error
			}
			_, _ = io.Copy(io.Discard, conn) // until the client closes
			conn.Close()
		}
	})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	rec := &recorder{}
	connects := 0
	rec.on = func(s schemas.SessionState) {
		if s.Phase == schemas.PhaseConnected {
			if connects++; connects == 2 {
				cancel()
			}
		}
	}
	out := make(chan schemas.Frame, 8)
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-garbled", Addr: ln.Addr().String()},
		gsclient.WithClock(clock.NewAuto(epoch)), gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	st := c.Stats()
	if st.FramesForwarded != 2 || st.FramesInvalid != 1 || st.Sessions != 2 {
		t.Fatalf("stats %+v, want 2 forwarded, 1 invalid, 2 sessions", st)
	}
	if got := phases(rec.all())[:4]; !slices.Equal(got, []string{"connecting/0", "connected", "reconnecting/1", "connecting/1"}) {
		t.Fatalf("transitions %v", got)
	}
}

// A TLE fetch cut short by a lost session (here: a 503 whose backoff is
// interrupted) is retried as soon as the next session connects, not a
// whole TLERefresh later.
func TestTLERetriedAtNextSessionAfterFailure(t *testing.T) {
	api := newTLEAPI(t, status(503))
	sim := startSim(t, stationsim.Config{Rate: 200})
	clk := clock.NewFake(epoch)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	out := make(chan schemas.Frame, 1024)
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-tle", Addr: sim.Addr(), NoradID: 25544,
		APIBase: api.srv.URL}, gsclient.WithClock(clk), gsclient.WithOutput(out), gsclient.WithHTTPClient(api.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if _, err := clk.WaitPending(ctx, 1); err != nil { // the 503's backoff
		t.Fatal(err)
	}
	sim.DropConnections() // the session ends during the backoff
	// Reconnect after 1 s: the fetch backoff was cancelled with the session,
	// so the only pending timer is the reconnect wait.
	bustest.Eventually(t, 5*time.Second, func() bool {
		p := clk.Pending()
		return len(p) == 1 && p[0] == time.Second && c.State().Phase == schemas.PhaseReconnecting
	}, "no reconnect wait")
	clk.Advance(time.Second)
	bustest.Eventually(t, 5*time.Second, func() bool { return c.TLE() != nil }, "TLE not fetched by the second session")
	if n := api.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
