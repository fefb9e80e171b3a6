package system_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/system"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func testConfig(t *testing.T, dir string) system.Config {
	return system.Config{DataDir: dir, NATSAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0",
		UDPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: bustest.Logger(t)}
}

func start(t *testing.T, cfg system.Config) *system.System {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := system.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stop(t *testing.T, s *system.System) {
	t.Helper()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The whole system starts on temporary ports; a FrameBatch published by an
// independent connection is stored in TLM_INGEST and reads back field by field.
func TestWholeSystemStoresIngestedBatch(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	defer stop(t, s)
	base := "http://" + s.HTTP.Addr().String()
	bustest.Eventually(t, 5*time.Second, func() bool { c, _ := get(t, base+"/readyz"); return c == 200 }, "/readyz never 200")
	if c, body := get(t, base+"/healthz"); c != 200 {
		t.Fatalf("/healthz %d %s", c, body)
	}

	nc, err := nats.Connect(s.Bus.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	in := schemas.FrameBatch{StationID: "gs-test", Frames: []schemas.Frame{{
		StationID: "gs-test", SourceID: "gs-test", SourceKind: schemas.KindLiveUplink, Priority: schemas.PriorityEmergency,
		Sequence: 7, TimestampMs: 1_764_000_000_000, SatelliteID: 31, Flags: schemas.FlagEmergency, Payload: []byte("telemetry")}}}
	data, _ := schemas.Marshal(&in)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, "tlm.ingest.gs-test", data)
	if err != nil || ack.Stream != schemas.StreamIngest {
		t.Fatalf("publish: %v %+v", err, ack)
	}
	stream, err := js.Stream(ctx, schemas.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	var out schemas.FrameBatch
	if err := schemas.Decode(raw.Data, &out); err != nil {
		t.Fatal(err)
	}
	f := out.Frames[0]
	if out.StationID != "gs-test" || len(out.Frames) != 1 || f.StationID != "gs-test" || f.SourceID != "gs-test" ||
		f.SourceKind != schemas.KindLiveUplink || f.Priority != schemas.PriorityEmergency || f.Sequence != 7 ||
		f.TimestampMs != 1_764_000_000_000 || f.SatelliteID != 31 || f.Flags != schemas.FlagEmergency || string(f.Payload) != "telemetry" {
		t.Fatalf("read back %+v", out)
	}
	if c, body := get(t, base+"/metrics"); c != 200 || len(body) == 0 {
		t.Fatalf("/metrics %d", c)
	}
}

// Restarting on the same data dir keeps streams and messages; a second
// process on a data dir in use fails clearly and harms nothing.
func TestRestartAndExclusiveDataDir(t *testing.T) {
	dir := t.TempDir()
	s := start(t, testConfig(t, dir))
	p := bus.NewPublisher(s.Bus.JS, 8, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		batch := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-r", Frames: []schemas.Frame{{Sequence: uint64(i)}}})
		if _, err := p.Publish(ctx, bus.NewMsg("tlm.ingest.gs-r", batch, "")); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close(ctx)

	_, err := system.Start(ctx, testConfig(t, dir))
	if !errors.Is(err, bus.ErrDataDirLocked) {
		t.Fatalf("second start on a data dir in use: %v", err)
	}
	stop(t, s)

	s2 := start(t, testConfig(t, dir))
	defer stop(t, s2)
	st, err := s2.Bus.JS.Stream(ctx, schemas.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 5 {
		t.Fatalf("after restart TLM_INGEST has %d messages, want 5", info.State.Msgs)
	}
	if err := s2.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOnlyRejectsUnknownComponent(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Only = []string{"dashboard", "teleporter"}
	if _, err := system.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "teleporter") {
		t.Fatalf("unknown component accepted: %v", err)
	}
}

// A command submitted over the ops HTTP API (bearer token) is stored,
// queued by the cmdqueue worker and dispatched on cmd.dispatch.<station>.
func TestCommandFlowsThroughTheSystem(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.APIToken = "ops-token"
	s := start(t, cfg)
	defer stop(t, s)
	nc := bustest.Conn(t, s.Bus)
	sub, err := nc.SubscribeSync("cmd.dispatch.gs-flow")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	req, _ := http.NewRequest("POST", "http://"+s.HTTP.Addr().String()+"/api/commands",
		strings.NewReader(`{"id":"flow-1","station_id":"gs-flow","kind":"SAFE_MODE"}`))
	req.Header.Set("Authorization", "Bearer ops-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no dispatch: %v", err)
	}
	var c schemas.Command
	if err := schemas.Decode(msg.Data, &c); err != nil || c.ID != "flow-1" || c.Kind != schemas.CmdSafeMode {
		t.Fatalf("dispatched %+v: %v", c, err)
	}
}

// With a gs-client fleet file, meridian run dials the stations, their
// frames land in TLM_INGEST and the session shows as connected in KV.
func TestRunDialsConfiguredStations(t *testing.T) {
	st := stationsim.New(stationsim.Config{StationNum: 3, Satellites: []uint32{7}, Rate: 200}, bustest.Discard)
	if err := st.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- st.Run(sctx) }()
	defer func() { scancel(); <-sdone }()

	fleet := filepath.Join(t.TempDir(), "stations.json")
	if err := os.WriteFile(fleet, []byte(`{"stations":[{"station":"gs-dialled","addr":"`+st.Addr()+`"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir())
	cfg.GSStations = fleet
	s := start(t, cfg)
	defer stop(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kv, _ := s.Bus.JS.KeyValue(ctx, schemas.BucketSessions)
	stream, _ := s.Bus.JS.Stream(ctx, schemas.StreamIngest)
	bustest.Eventually(t, 10*time.Second, func() bool {
		var state schemas.SessionState
		found, _ := bus.KVGet(ctx, kv, "gs-dialled", &state)
		info, _ := stream.Info(ctx)
		return found && state.Phase == schemas.PhaseConnected && state.Origin == "gs-client" && info.State.Msgs > 0
	}, "dialled station not connected or no frames ingested")
	raw, err := stream.GetLastMsgForSubject(ctx, "tlm.ingest.gs-dialled")
	if err != nil {
		t.Fatal(err)
	}
	var b schemas.FrameBatch
	if err := schemas.Decode(raw.Data, &b); err != nil || b.Frames[0].SatelliteID != 7 || b.Frames[0].StationID != "gs-dialled" {
		t.Fatalf("ingested %+v: %v", b, err)
	}
}

// A station speaking the wire format to the all-in-one process: its frames
// land in TLM_INGEST, its session is visible in KV, and a command
// submitted for it is written back on its connection.
func TestStationThroughGateway(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	defer stop(t, s)
	c, err := net.Dial("tcp", s.Gateway.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = schemas.WriteFrame(c, []byte("HELLO station=gs-e2e format=mf1"))
	_ = schemas.WriteFrame(c, schemas.AppendMF1(nil, schemas.MF1Header{TimestampMs: 5, Sequence: 1, SatelliteID: 12, Flags: schemas.FlagEmergency}, []byte("hi")))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, _ := s.Bus.JS.Stream(ctx, schemas.StreamIngest)
	kv, _ := s.Bus.JS.KeyValue(ctx, schemas.BucketSessions)
	bustest.Eventually(t, 10*time.Second, func() bool {
		info, _ := stream.Info(ctx)
		var st schemas.SessionState
		found, _ := bus.KVGet(ctx, kv, "gs-e2e", &st)
		return info.State.Msgs == 1 && found && st.Phase == schemas.PhaseConnected
	}, "frame not ingested or session not registered")

	cmd, _ := schemas.Marshal(&schemas.Command{ID: "e2e-1", StationID: "gs-e2e", Kind: schemas.CmdAbortPass})
	if _, err := s.Bus.JS.Publish(ctx, "cmd.submit.gs-e2e", cmd); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := schemas.ReadFrame(c, nil)
	if err != nil {
		t.Fatalf("command not written back: %v", err)
	}
	var got schemas.Command
	if err := schemas.Decode(p, &got); err != nil || got.ID != "e2e-1" {
		t.Fatalf("got %+v: %v", got, err)
	}
}

// The whole telemetry path in one process: a station's frames (one relayed
// twice, one with a failed CRC, one emergency) go gateway → router →
// fan-in → processor and come out of tlm.processed de-duplicated and
// counted in KV meridian_stats "pipeline".
func TestTelemetryEndToEnd(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	defer stop(t, s)
	c, err := net.Dial("tcp", s.Gateway.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = schemas.WriteFrame(c, []byte("HELLO station=gs-e2e format=mf1"))
	frame := func(seq uint64, flags uint8) []byte {
		return schemas.AppendMF1(nil, schemas.MF1Header{TimestampMs: 1000 + seq, Sequence: seq, SatelliteID: 5, Flags: flags}, []byte("tm"))
	}
	for _, f := range [][]byte{frame(1, 0), frame(2, 0), frame(2, 0), frame(3, schemas.FlagCRCFailed), frame(4, schemas.FlagEmergency)} {
		_ = schemas.WriteFrame(c, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, _ := s.Bus.JS.KeyValue(ctx, schemas.BucketStats)
	var ps schemas.PipelineStats
	bustest.Eventually(t, 15*time.Second, func() bool {
		found, _ := bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return found && ps.FramesProcessed == 3 && ps.DuplicatesDropped == 1 && ps.InvalidDropped == 1 && ps.FramesIngested == 5
	}, "pipeline stats never reached the expected counts")
	if ps.EmergencyCount != 1 || ps.FramesRouted != 5 {
		t.Fatalf("stats %+v", ps)
	}
	// Criterion 4: the archive holds exactly what the processor processed.
	bustest.Eventually(t, 10*time.Second, func() bool { return s.Archive.Count() == ps.FramesProcessed },
		"archive holds %d frames, processor processed %d", s.Archive.Count(), ps.FramesProcessed)
	st, _ := s.Bus.JS.Stream(ctx, schemas.StreamProcessed)
	raw, err := st.GetLastMsgForSubject(ctx, "tlm.processed.gs-e2e")
	if err != nil {
		t.Fatal(err)
	}
	var out schemas.FrameBatch
	if err := schemas.Decode(raw.Data, &out); err != nil {
		t.Fatal(err)
	}
	if n := len(out.Frames); n == 0 || out.Frames[n-1].SatelliteID != 5 {
		t.Fatalf("processed %+v", out)
	}
}
