package gsclient_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// Criteria 1 and 7: the station drops the connection after 5 frames and
// then refuses three dials; the client reconnects with backoff 1, 2, 4, 8 s
// (on the fake clock), and a KV watcher sees every transition in order.
func TestReconnectBackoffAfterDrop(t *testing.T) {
	b := bustest.New(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	sim := startSim(t, stationsim.Config{Rate: 500, DropAfter: 5})

	kv, err := b.JS.KeyValue(ctx, schemas.BucketSessions)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(testCtx(t), schemas.KVKey("gs-drop.1")) // outlives the client's ctx
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	rec := &recorder{}
	connects := 0
	rec.on = func(s schemas.SessionState) { // runs in the client's goroutine, before its next step
		switch {
		case s.Phase == schemas.PhaseReconnecting && s.Attempt == 1:
			sim.Refuse()
		case s.Phase == schemas.PhaseReconnecting && s.Attempt == 4:
			if err := sim.Resume(); err != nil {
				t.Error(err)
			}
		case s.Phase == schemas.PhaseConnected:
			if connects++; connects == 2 {
				cancel()
			}
		}
	}
	clk := clock.NewAuto(epoch)
	out := make(chan schemas.Frame, 64)
	c, err := gsclient.New(b.JS, bustest.Logger(t), gsclient.Config{Station: "gs-drop.1", Addr: sim.Addr()},
		gsclient.WithClock(clk), gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}

	want := []string{"connecting/0", "connected", "reconnecting/1", "connecting/1", "reconnecting/2", "connecting/2",
		"reconnecting/3", "connecting/3", "reconnecting/4", "connecting/4", "connected", "disconnecting", "stopped"}
	got := phases(rec.all())
	if !slices.Equal(got, want) {
		t.Fatalf("transitions\n got %v\nwant %v", got, want)
	}
	if len(out) < 5 {
		t.Errorf("%d frames forwarded from the first session, want 5", len(out))
	}
	wantBackoff := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if got := clk.Requested(); !slices.Equal(got, wantBackoff) {
		t.Errorf("backoff waits %v, want %v", got, wantBackoff)
	}
	for _, s := range rec.all() {
		if s.Phase == schemas.PhaseReconnecting {
			if d := time.Duration(s.NextRetryMs-s.UpdatedAtMs) * time.Millisecond; d != wantBackoff[s.Attempt-1] {
				t.Errorf("reconnecting/%d: next_retry in %v, want %v", s.Attempt, d, wantBackoff[s.Attempt-1])
			}
		}
		if s.Origin != gsclient.Origin || s.StationID != "gs-drop.1" || s.Addr != sim.Addr() {
			t.Errorf("state %+v: wrong identity", s)
		}
	}

	// Criterion 7: the KV watcher saw the same transitions in the same order.
	var seen []schemas.SessionState
	for len(seen) < len(want) {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				t.Fatalf("KV watch ended after %v", phases(seen))
			}
			if e == nil {
				continue // end of the initial values
			}
			var s schemas.SessionState
			if err := schemas.Decode(e.Value(), &s); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, s)
		case <-time.After(5 * time.Second):
			t.Fatalf("KV watcher saw only %v", phases(seen))
		}
	}
	if got := phases(seen); !slices.Equal(got, want) {
		t.Fatalf("KV watcher saw\n %v\nwant %v", got, want)
	}
	if err := gsclient.CheckTransitions(seen, c.Config()); err != nil {
		t.Fatal(err)
	}
	if got := c.State().Phase; got != schemas.PhaseStopped {
		t.Errorf("final state %s", got)
	}
}

// Criteria 2 and 3: a station that refuses every dial. The waits double
// from 1 s and stay at 30 s; after 5 minutes of failure the station is
// marked Failed, retrying stops and Run returns ErrFailed.
func TestSustainedRefusalCapsBackoffThenFails(t *testing.T) {
	sim := startSim(t, stationsim.Config{})
	sim.Refuse()
	clk := clock.NewAuto(epoch)
	rec := &recorder{}
	out := make(chan schemas.Frame, 1)
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-refuse", Addr: sim.Addr()},
		gsclient.WithClock(clk), gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(testCtx(t))
	if !errors.Is(err, gsclient.ErrFailed) {
		t.Fatalf("Run = %v, want ErrFailed", err)
	}
	waits := clk.Requested()
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	var total time.Duration
	for _, w := range waits {
		if w > 30*time.Second {
			t.Errorf("wait %v exceeds the 30 s cap", w)
		}
		total += w
	}
	if total < 5*time.Minute-30*time.Second || clk.Now().Sub(epoch) < 5*time.Minute {
		t.Errorf("failed after %v of waiting (clock at +%v), want >= 5 min", total, clk.Now().Sub(epoch))
	}
	states := rec.all()
	last := states[len(states)-1]
	if last.Phase != schemas.PhaseFailed || !strings.Contains(last.Reason, "refused") {
		t.Fatalf("last state %+v, want failed with the refusal as reason", last)
	}
	if got := c.State().Phase; got != schemas.PhaseFailed {
		t.Errorf("State() = %s after Run, want failed (not overwritten by stopped)", got)
	}
	if s := sim.Stats(); s.Accepted != 0 {
		t.Errorf("refusing station accepted %d", s.Accepted)
	}
}

// A station that is down at start-up: the first dials are refused, then it
// comes up and frames flow.
func TestRefusedAtStartThenConnects(t *testing.T) {
	sim := startSim(t, stationsim.Config{Rate: 1000})
	sim.Refuse()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	rec := &recorder{}
	rec.on = func(s schemas.SessionState) {
		if s.Phase == schemas.PhaseReconnecting && s.Attempt == 3 {
			if err := sim.Resume(); err != nil {
				t.Error(err)
			}
		}
	}
	clk := clock.NewAuto(epoch)
	out := make(chan schemas.Frame, 16)
	c, err := gsclient.New(nil, bustest.Logger(t), gsclient.Config{Station: "gs-late", Addr: sim.Addr()},
		gsclient.WithClock(clk), gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for range 5 {
		select {
		case f := <-out:
			if f.StationID != "gs-late" || f.SourceKind != schemas.KindLiveUplink || len(f.Payload) != 64 {
				t.Fatalf("frame %+v", f)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no frames after the station came up")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if got := clk.Requested(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if got := phases(rec.all())[:8]; !slices.Equal(got, []string{"connecting/0", "reconnecting/1", "connecting/1",
		"reconnecting/2", "connecting/2", "reconnecting/3", "connecting/3", "connected"}) {
		t.Errorf("transitions %v", got)
	}
}
