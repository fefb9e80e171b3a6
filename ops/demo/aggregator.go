package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/system"
	"github.com/meridian-ops/meridian/workers/router"
)

// Aggregator runs the course's "Multi-Source Telemetry Aggregator" demo
// against the real pipeline on a private embedded NATS: 4 live uplinks
// send 10 frames each (2 emergency) through the gateway, a replay source
// registered at run time sends 5, a monitor prints the KV stats every
// 50 ms, the archive consumes everything, and the system shuts down once
// the sources finish. It checks the course's criteria it can observe from
// outside and returns an error if one fails.
func Aggregator(ctx context.Context, w io.Writer) error {
	w = &lockedWriter{w: w} // the stats monitor prints from its own goroutine
	dir, err := os.MkdirTemp("", "meridian-aggregator")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := system.Start(ctx, system.Config{DataDir: dir, NATSAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0",
		UDPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: quietLogger(),
		Only: []string{"archive", "processor", "fanin", "router", "liveview", "gateway"}})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Shutdown(context.Background())
		}
	}()
	nc, err := nats.Connect(s.Bus.URL, nats.Name("aggregator-demo"))
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := s.Bus.JS.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return err
	}
	stats := func() schemas.PipelineStats {
		var ps schemas.PipelineStats
		_, _ = bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return ps
	}

	// Processed frames in arrival order, to check emergency-first within a source.
	type seen struct {
		station string
		seq     uint64
		emerg   bool
	}
	order := make(chan seen, 1024)
	sub, err := nc.Subscribe(schemas.ProcessedAll, func(m *nats.Msg) {
		var fb schemas.FrameBatch
		if schemas.Unmarshal(m.Data, &fb) == nil {
			for _, f := range fb.Frames {
				order <- seen{f.StationID, f.Sequence, f.Emergency()}
			}
		}
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()

	monitorCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	monitorDone := make(chan struct{})
	go func() { // the course's stats monitor: every 50 ms, read-only, lock-free on the writer's side
		defer close(monitorDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-monitorCtx.Done():
				return
			case <-t.C:
				ps := stats()
				fmt.Fprintf(w, "  [monitor] ingested=%d routed=%d processed=%d emergency=%d\n",
					ps.FramesIngested, ps.FramesRouted, ps.FramesProcessed, ps.EmergencyCount)
			}
		}
	}()

	fmt.Fprintln(w, "4 live uplinks × 10 frames (2 emergency each), 1 replay source × 5 frames")
	for i := range 4 {
		c, err := net.Dial("tcp", s.Gateway.Addr().String())
		if err != nil {
			return err
		}
		station := fmt.Sprintf("uplink-%d", i+1)
		_ = schemas.WriteFrame(c, []byte("HELLO station="+station+" format=mf1"))
		for j := range 10 {
			var flags uint8
			if j == 4 || j == 9 {
				flags = schemas.FlagEmergency
			}
			h := schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: uint64(j + 1), SatelliteID: uint32(10*i + j + 1), Flags: flags}
			_ = schemas.WriteFrame(c, schemas.AppendMF1(nil, h, []byte(fmt.Sprintf("%s frame %d", station, j+1))))
		}
		_ = schemas.WriteFrame(c, []byte("GOODBYE"))
		c.Close()
	}
	// Criterion 2: a source registered at run time through the router's control endpoint.
	reg := nats.NewMsg(router.SubjectAdd)
	reg.Header.Set("Content-Type", "application/json")
	reg.Data = []byte(`{"source_id":"replay-1","kind":"archived_replay"}`)
	// The router registers its service as it starts (system.Start does not
	// wait for that), so a client retries "no responders" for a while.
	var resp *nats.Msg
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = nc.RequestMsg(reg, 5*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // retry pacing, not synchronisation
	}
	if err != nil || resp.Header.Get("Nats-Service-Error") != "" {
		return fmt.Errorf("criterion 2: registering the replay source at run time failed: %v", err)
	}
	fmt.Fprintln(w, "registered source replay-1 (archived_replay) at run time")
	rb := schemas.FrameBatch{StationID: "replay-1"}
	for j := range 5 {
		rb.Frames = append(rb.Frames, schemas.Frame{StationID: "replay-1", SourceID: "replay-1", SourceKind: schemas.KindArchivedReplay,
			Sequence: uint64(j + 1), SatelliteID: uint32(100 + j), TimestampMs: uint64(time.Now().UnixMilli()), Payload: []byte("replayed")})
	}
	if _, err := s.Bus.JS.Publish(ctx, schemas.ReplaySubject("replay-1"), schemas.AppendFrameBatch(nil, &rb)); err != nil {
		return err
	}

	const want = 45
	deadline := time.Now().Add(20 * time.Second)
	for stats().FramesProcessed < want || stats().FramesIngested < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d frames processed", stats().FramesProcessed, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopMonitor()
	<-monitorDone
	ps := stats()
	// The archive is its own consumer of tlm.processed: give it until the
	// deadline to catch up before comparing (criterion 4).
	for s.Archive.Count() < ps.FramesProcessed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	archived := s.Archive.Count()
	// Criterion 6: shut down after the sources finished; nothing lost.
	err = s.Shutdown(context.Background())
	stopped = true
	if err != nil {
		return fmt.Errorf("criterion 6: shutdown: %w", err)
	}

	fmt.Fprintf(w, "processed %d frames (%d emergency), archived %d\n", ps.FramesProcessed, ps.EmergencyCount, archived)
	var fails []string
	if ps.FramesProcessed != want || ps.EmergencyCount != 8 {
		fails = append(fails, fmt.Sprintf("expected 45 frames with 8 emergency, got %d and %d", ps.FramesProcessed, ps.EmergencyCount))
	}
	if archived != ps.FramesProcessed {
		fails = append(fails, fmt.Sprintf("criterion 4: archive holds %d, processor processed %d", archived, ps.FramesProcessed))
	}
	// Criterion 1 within each source's batches as the processor emitted them:
	// print the order, check the counts per station.
	_ = sub.Unsubscribe()
	perStation := map[string]int{}
	for drained := false; !drained; {
		select {
		case f := <-order:
			perStation[f.station]++
			if f.emerg {
				fmt.Fprintf(w, "  EMERGENCY %s seq %d\n", f.station, f.seq)
			}
		default:
			drained = true
		}
	}
	for i := range 4 {
		if n := perStation[fmt.Sprintf("uplink-%d", i+1)]; n != 10 {
			fails = append(fails, fmt.Sprintf("uplink-%d: %d frames processed, want 10", i+1, n))
		}
	}
	if perStation["replay-1"] != 5 {
		fails = append(fails, fmt.Sprintf("replay-1: %d frames processed, want 5", perStation["replay-1"]))
	}
	if len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(w, "FAIL:", f)
		}
		return fmt.Errorf("aggregator demo: %d criteria failed", len(fails))
	}
	fmt.Fprintln(w, "all criteria hold: every frame processed and archived once; runtime registration; clean drain")
	return nil
}

// quietLogger drops the components' logs so the demo prints only its own.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
