package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/ops/dashboard"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	// httptest keep-alive connections may still be closing.
	goleak.VerifyTestMain(m, bustest.LeakOptions(goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))...)
}

func startHub(t *testing.T) (*bus.Bus, *dashboard.Hub, *httptest.Server) {
	b := bustest.New(t)
	h := dashboard.NewHub(b.Conn, b.JS, bustest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = h.Run(ctx) }()
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); wg.Wait() })
	return b, h, srv
}

func state(t *testing.T, h *dashboard.Hub) dashboard.State {
	b, _, _ := h.Snapshot()
	var s dashboard.State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// KV stats and sessions, dispatches and emergency frames all reach the
// snapshot; a deleted session disappears.
func TestHubFollowsTheBus(t *testing.T) {
	b, h, _ := startHub(t)
	ctx := context.Background()
	stats, _ := b.JS.KeyValue(ctx, schemas.BucketStats)
	sessions, _ := b.JS.KeyValue(ctx, schemas.BucketSessions)
	if _, err := bus.KVPut(ctx, stats, schemas.KeyPipelineStats, &schemas.PipelineStats{FramesProcessed: 42, EmergencyCount: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.KVPut(ctx, sessions, "gs-1", &schemas.SessionState{StationID: "gs-1", Phase: schemas.PhaseConnected}); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() bool {
		s := state(t, h)
		return s.Pipeline.FramesProcessed == 42 && len(s.Sessions) == 1 && s.Sessions[0].Phase == schemas.PhaseConnected
	}, "stats and session not reflected")

	cmd, _ := schemas.Marshal(&schemas.Command{ID: "c1", StationID: "gs-1", Kind: schemas.CmdSafeMode})
	frame := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-1", Frames: []schemas.Frame{{StationID: "gs-1", SatelliteID: 9, Sequence: 77, Flags: schemas.FlagEmergency}}})
	bustest.Eventually(t, 5*time.Second, func() bool {
		// Core subscriptions may not be active yet on the first try: publish until seen.
		_ = b.Conn.Publish("cmd.dispatch.gs-1", cmd)
		_ = b.Conn.Publish("tlm.routed.emergency.gs-1", frame)
		s := state(t, h)
		return len(s.Dispatches) > 0 && s.Dispatches[0].Priority == 255 && len(s.Emergency) > 0 && s.Emergency[0].Sequence == 77
	}, "dispatch and emergency frame not shown")

	// Garbage on every input is ignored and counted; the hub keeps going.
	_ = b.Conn.Publish("cmd.dispatch.gs-1", []byte("garbage"))
	_ = b.Conn.Publish("tlm.routed.emergency.gs-1", []byte{0xc1})
	if _, err := sessions.Put(ctx, "gs-bad", []byte{0x81, 0xa1}); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return dashboardMalformed() >= 3 }, "garbage not counted")

	if err := sessions.Delete(ctx, "gs-1"); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return len(state(t, h).Sessions) == 0 }, "deleted session still shown")
}

func TestEventsStreamAndPage(t *testing.T) {
	b, _, srv := startHub(t)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	ev, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	if ct := ev.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	stats, _ := b.JS.KeyValue(ctx, schemas.BucketStats)
	if _, err := bus.KVPut(ctx, stats, schemas.KeyCmdQueueStats, &schemas.CmdQueueStats{Depth: 17}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(ev.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s dashboard.State
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("event is not a state: %v", err)
		}
		if s.CmdQueue.Depth == 17 {
			return
		}
	}
	t.Fatalf("stream ended without the update: %v", sc.Err())
}

func dashboardMalformed() float64 {
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "meridian_dashboard_malformed_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
