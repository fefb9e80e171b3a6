package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// GSClient is the course's "Ground Station Network Client" scenario: a
// client dials a local simulated station, receives 5 frames, survives the
// station dropping the connection (reconnecting after the 1 s backoff),
// refreshes its TLE from a local mission API that first answers 503, and
// shuts down cleanly (GOODBYE, Stopped). Every transition is printed as a
// KV watcher on meridian_sessions sees it. It returns an error naming each
// criterion that failed.
func GSClient(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w = &lockedWriter{w: w} // the KV watcher prints from its own goroutine
	start := time.Now()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	dir, err := os.MkdirTemp("", "meridian-demo-gsclient-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, ListenAddr: "-", Name: "demo-gsclient", Logger: quiet})
	if err != nil {
		return err
	}
	defer b.Close()

	// The station and the mission API.
	sim := stationsim.New(stationsim.Config{Rate: 50, Satellites: []uint32{25544}, EmergencyRatio: 0.1, Seed: 7}, quiet)
	if err := sim.Listen(); err != nil {
		return err
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = sim.Run(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	api, apiRequests, err := demoTLEAPI()
	if err != nil {
		return err
	}
	defer api.Close()
	fmt.Fprintf(w, "station simulator on %s, mission API on http://%s (first answer 503)\n", sim.Addr(), api.Addr)

	// Watch the session's KV key before the client starts.
	kv, err := b.JS.KeyValue(ctx, schemas.BucketSessions)
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watcher, err := kv.Watch(watchCtx, "gs-demo")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var watched []schemas.SessionState
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for e := range watcher.Updates() {
			if e == nil {
				continue
			}
			var s schemas.SessionState
			if schemas.Decode(e.Value(), &s) != nil {
				continue
			}
			mu.Lock()
			watched = append(watched, s)
			mu.Unlock()
			fmt.Fprintf(w, "  %6.3fs  KV %-13s %s\n", time.Since(start).Seconds(), s.Phase, describe(s))
		}
	}()

	var hooked []schemas.SessionState
	var hookMu sync.Mutex
	c, err := gsclient.New(b.JS, quiet, gsclient.Config{Station: "gs-demo", Addr: sim.Addr(), NoradID: 25544,
		APIBase: "http://" + api.Addr},
		gsclient.WithStateHook(func(s schemas.SessionState) { hookMu.Lock(); hooked = append(hooked, s); hookMu.Unlock() }))
	if err != nil {
		return err
	}
	runCtx, stopClient := context.WithCancel(ctx)
	defer stopClient()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(runCtx) }()

	var failures []string
	fail := func(f string, a ...any) { failures = append(failures, fmt.Sprintf(f, a...)) }
	waitFor := func(what string, cond func() bool) bool {
		for !cond() {
			if ctx.Err() != nil {
				fail("timed out waiting for %s", what)
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}

	if waitFor("5 frames", func() bool { return c.Stats().FramesRead >= 5 }) {
		fmt.Fprintf(w, "  %6.3fs  received %d frames; the station drops the connection\n", time.Since(start).Seconds(), c.Stats().FramesRead)
		sim.DropConnections()
	}
	before := c.Stats().FramesRead
	if waitFor("the reconnection", func() bool { return c.Stats().Sessions >= 2 && c.Stats().FramesRead >= before+5 }) {
		fmt.Fprintf(w, "  %6.3fs  reconnected; %d frames received in all\n", time.Since(start).Seconds(), c.Stats().FramesRead)
	}
	waitFor("a TLE", func() bool { return c.TLE() != nil })
	stopClient()
	if err := <-runDone; err != nil {
		fail("Run returned %v", err)
	}
	waitFor("GOODBYE at the station", func() bool { return sim.Stats().Goodbyes >= 1 })
	st := c.Stats()

	// What reached the bus.
	withTLE, ingested, err := countIngested(ctx, b.JS, "gs-demo")
	if err != nil {
		fail("reading TLM_INGEST: %v", err)
	}
	hookMu.Lock()
	hookedPhases := phaseList(hooked)
	hookMu.Unlock()
	waitFor("the KV watcher", func() bool { mu.Lock(); defer mu.Unlock(); return len(watched) >= len(hookedPhases) })
	stopWatch()
	<-watchDone
	mu.Lock()
	watchedPhases := phaseList(watched)
	mu.Unlock()

	fmt.Fprintf(w, "frames: read %d, forwarded %d, dropped %d, on tlm.ingest.gs-demo %d (%d with a TLE); API requests %d; station saw %d GOODBYE\n",
		st.FramesRead, st.FramesForwarded, st.FramesDropped, ingested, withTLE, apiRequests.Load(), sim.Stats().Goodbyes)

	// The criteria.
	if i := slices.Index(hookedPhases, "reconnecting/1"); i < 0 || i+2 >= len(hookedPhases) ||
		hookedPhases[i+1] != "connecting/1" || hookedPhases[i+2] != "connected" {
		fail("criterion 1: no reconnect after the drop (transitions %v)", hookedPhases)
	} else if d := time.Duration(hooked[i].NextRetryMs-hooked[i].UpdatedAtMs) * time.Millisecond; d != time.Second {
		fail("criterion 1: first backoff %v, want 1s", d)
	}
	if withTLE == 0 || apiRequests.Load() < 2 {
		fail("criterion 4: TLE not refreshed after a 503 (%d requests, %d frames with a TLE)", apiRequests.Load(), withTLE)
	}
	if st.FramesDropped != 0 || uint64(ingested) != st.FramesForwarded {
		fail("frames: forwarded %d but %d on the bus, %d dropped", st.FramesForwarded, ingested, st.FramesDropped)
	}
	if n := len(hookedPhases); n < 2 || hookedPhases[n-2] != "disconnecting" || hookedPhases[n-1] != "stopped" || sim.Stats().Goodbyes != 1 {
		fail("criterion 6: unclean shutdown (transitions %v, goodbyes %d)", hookedPhases, sim.Stats().Goodbyes)
	}
	if !slices.Equal(watchedPhases, hookedPhases) {
		fail("criterion 7: KV watcher saw %v, client made %v", watchedPhases, hookedPhases)
	}
	mu.Lock()
	if err := gsclient.CheckTransitions(watched, c.Config()); err != nil {
		fail("criteria 1, 7: transitions break the state machine: %v", err)
	}
	mu.Unlock()
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintln(w, "FAIL", f)
		}
		return fmt.Errorf("gsclient demo: %d criteria failed: %v", len(failures), failures)
	}
	fmt.Fprintf(w, "PASS: connected, received, survived the drop, reconnected after 1s, refreshed the TLE, shut down cleanly (%d transitions, all seen in order by the KV watcher) in %.2fs\n",
		len(hookedPhases), time.Since(start).Seconds())
	return nil
}

func describe(s schemas.SessionState) string {
	switch s.Phase {
	case schemas.PhaseConnecting:
		return fmt.Sprintf("attempt %d to %s", s.Attempt, s.Addr)
	case schemas.PhaseConnected:
		return "since " + time.UnixMilli(s.SinceMs).UTC().Format("15:04:05.000")
	case schemas.PhaseReconnecting:
		return fmt.Sprintf("attempt %d in %v", s.Attempt, time.Duration(s.NextRetryMs-s.UpdatedAtMs)*time.Millisecond)
	case schemas.PhaseFailed:
		return s.Reason
	}
	return ""
}

func phaseList(states []schemas.SessionState) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s.Phase)
		if s.Phase == schemas.PhaseConnecting || s.Phase == schemas.PhaseReconnecting {
			out[i] += fmt.Sprintf("/%d", s.Attempt)
		}
	}
	return out
}

// demoTLEAPI serves GET /tle/25544: 503 on the first request, then the ISS.
func demoTLEAPI() (*http.Server, *atomic.Int32, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	var n atomic.Int32
	srv := &http.Server{Addr: ln.Addr().String(), ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			if r.URL.Path != "/tle/25544" {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(schemas.Tle{NoradID: 25544, IntlDesignator: "98067A", Epoch: 26329.5,
				MeanMotion: 15.5, Eccentricity: 0.0006, Inclination: 51.64, Source: "demo", Name: "ISS (ZARYA)"})
		})}
	go func() { _ = srv.Serve(ln) }()
	return srv, &n, nil
}

// countIngested counts the frames on tlm.ingest.<station> and those with a TLE.
func countIngested(ctx context.Context, js jetstream.JetStream, station string) (withTLE, total int, err error) {
	cons, err := js.OrderedConsumer(ctx, schemas.StreamIngest, jetstream.OrderedConsumerConfig{
		FilterSubjects: schemas.IngestSubjects(station)})
	if err != nil {
		return 0, 0, err
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			return withTLE, total, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var fb schemas.FrameBatch
			if err := schemas.Decode(m.Data(), &fb); err != nil {
				return withTLE, total, err
			}
			for _, f := range fb.Frames {
				total++
				if f.Tle != nil {
					withTLE++
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return withTLE, total, err
		}
		if got == 0 {
			return withTLE, total, nil
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
