package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/schemas"
)

// printf '\x00\x00\x00\x05hello' | nc localhost 7777
func TestOpaqueFrameWithoutHello(t *testing.T) {
	r := startGateway(t, gateway.Config{})
	c := r.dial()
	if _, err := c.Write([]byte("\x00\x00\x00\x05hello")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	fs := r.waitFrames(1)
	f := fs[0]
	if string(f.Payload) != "hello" || !strings.HasPrefix(f.StationID, "gs-") || !strings.Contains(f.StationID, "@127.0.0.1:") ||
		f.SourceKind != schemas.KindLiveUplink || f.Priority != schemas.PriorityRoutine || f.Sequence == 0 || f.TimestampMs == 0 {
		t.Fatalf("stored %+v", f)
	}
	kv, _ := r.bus.JS.KeyValue(context.Background(), schemas.BucketSources)
	var src schemas.Source
	if found, err := bus.KVGet(context.Background(), kv, schemas.KVKey(f.StationID), &src); !found || err != nil || src.Kind != schemas.KindLiveUplink {
		t.Fatalf("station not registered as a source: %v %+v", err, src)
	}
}

// With HELLO and mf1 the header fills the frame; an emergency frame is
// published at once even though routine frames wait for a long linger.
func TestMF1HeaderAndEmergencyNotHeld(t *testing.T) {
	r := startGateway(t, gateway.Config{Linger: time.Hour})
	c := r.dial()
	send(t, c, []byte("HELLO station=gs-svalbard format=mf1"))
	send(t, c, mf1(7, 1, 0, "routine-1"))
	send(t, c, mf1(7, 2, 0, "routine-2"))
	// Nothing is published yet: routine frames wait for the (hour-long) linger.
	kv, _ := r.bus.JS.KeyValue(context.Background(), schemas.BucketSessions)
	bustest.Eventually(t, 5*time.Second, func() bool {
		var st schemas.SessionState
		found, _ := bus.KVGet(context.Background(), kv, "gs-svalbard", &st)
		return found && st.Phase == schemas.PhaseConnected && st.Origin == "gateway"
	}, "session state not published")
	if fs := r.ingested(); len(fs) != 0 {
		t.Fatalf("routine frames published before linger: %d", len(fs))
	}
	send(t, c, mf1(9, 3, schemas.FlagEmergency, "SAFE"))
	// The emergency frame is published at once, on its own lane, while the
	// routine frames read before it still wait for their batch.
	fs := r.waitFrames(1)
	e := fs[0]
	if len(fs) != 1 || e.Priority != schemas.PriorityEmergency || e.SatelliteID != 9 || e.Sequence != 3 || e.TimestampMs != 1_764_000_000_003 ||
		e.Flags != schemas.FlagEmergency || string(e.Payload) != "SAFE" || e.StationID != "gs-svalbard" || e.SourceID != "gs-svalbard" {
		t.Fatalf("ingested %+v, want only the emergency frame", fs)
	}
	st, _ := r.bus.JS.Stream(context.Background(), schemas.StreamIngest)
	if m, err := st.GetLastMsgForSubject(context.Background(), schemas.IngestEmergencySubject("gs-svalbard")); err != nil || m.Sequence != 1 {
		t.Fatalf("emergency frame not on the emergency lane: %v", err)
	}
	send(t, c, []byte("GOODBYE"))
	fs = r.waitFrames(3) // GOODBYE flushes the routine batch
	if string(fs[1].Payload) != "routine-1" || fs[1].Priority != schemas.PriorityRoutine || string(fs[2].Payload) != "routine-2" {
		t.Fatalf("routine frames %+v", fs[1:])
	}
	bustest.Eventually(t, 5*time.Second, func() bool {
		var st schemas.SessionState
		found, _ := bus.KVGet(context.Background(), kv, "gs-svalbard", &st)
		return found && st.Phase == schemas.PhaseStopped && st.Reason == "goodbye"
	}, "GOODBYE did not end the session cleanly")
}

func TestLingerFlushesRoutineFrames(t *testing.T) {
	r := startGateway(t, gateway.Config{Linger: 5 * time.Millisecond})
	c := r.dial()
	send(t, c, []byte("HELLO station=gs-l format=mf1"))
	send(t, c, mf1(1, 1, 0, "x"))
	r.waitFrames(1) // the connection stays open: only the linger can have flushed it
}

// A bad mf1 payload is forwarded flagged as failed, not dropped.
func TestInvalidMF1ForwardedFlagged(t *testing.T) {
	r := startGateway(t, gateway.Config{})
	c := r.dial()
	send(t, c, []byte("HELLO station=gs-bad format=mf1"))
	send(t, c, []byte("too short for a header"))
	c.Close()
	fs := r.waitFrames(1)
	if fs[0].Flags&schemas.FlagCRCFailed == 0 || string(fs[0].Payload) != "too short for a header" {
		t.Fatalf("invalid mf1 stored as %+v", fs[0])
	}
}

// Criterion 1 at scale: 64 sessions stream at once; every frame is stored
// exactly once and in order within each of its lanes.
func TestConcurrentSessionsExactlyOnceInOrder(t *testing.T) {
	r := startGateway(t, gateway.Config{Linger: 2 * time.Millisecond, MaxBatchFrames: 64})
	const sessions, perSession = 64, 150
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", r.srv.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			w := bufio.NewWriter(c)
			_ = schemas.WriteFrame(w, []byte(fmt.Sprintf("HELLO station=gs-%02d format=mf1", s)))
			for i := range perSession {
				flags := uint8(0)
				if i%50 == 49 {
					flags = schemas.FlagEmergency
				}
				_ = schemas.WriteFrame(w, mf1(uint32(s+1), uint64(i+1), flags, "payload"))
			}
			_ = schemas.WriteFrame(w, []byte("GOODBYE"))
			if err := w.Flush(); err != nil {
				t.Error(err)
			}
			_, _ = io.Copy(io.Discard, c) // wait for the gateway to close the session
		}()
	}
	wg.Wait()
	fs := r.waitFrames(sessions * perSession)
	if len(fs) != sessions*perSession {
		t.Fatalf("stored %d frames, want %d", len(fs), sessions*perSession)
	}
	// Exactly once, and in order within each of a station's two lanes
	// (an emergency frame overtakes the routine frames still batching).
	seen := map[string]map[uint64]bool{}
	last := map[string]uint64{}
	for _, f := range fs {
		if seen[f.StationID] == nil {
			seen[f.StationID] = map[uint64]bool{}
		}
		if seen[f.StationID][f.Sequence] {
			t.Fatalf("%s: frame %d stored twice", f.StationID, f.Sequence)
		}
		seen[f.StationID][f.Sequence] = true
		lane := f.StationID + "/" + string(f.Priority)
		if f.Sequence <= last[lane] {
			t.Fatalf("%s: frame %d stored after %d", lane, f.Sequence, last[lane])
		}
		last[lane] = f.Sequence
		if (f.Sequence%50 == 0) != (f.Priority == schemas.PriorityEmergency) {
			t.Fatalf("%s: frame %d has priority %s", f.StationID, f.Sequence, f.Priority)
		}
	}
	if len(seen) != sessions {
		t.Fatalf("%d stations stored, want %d", len(seen), sessions)
	}
}

// Oversized, empty, truncated and garbage input close only their own
// session; a concurrent good session keeps streaming.
func TestBadInputClosesOnlyThatSession(t *testing.T) {
	r := startGateway(t, gateway.Config{Linger: time.Millisecond})
	good := r.dial()
	send(t, good, []byte("HELLO station=gs-good format=mf1"))
	send(t, good, mf1(1, 1, 0, "before"))

	cases := map[string][]byte{
		"too large": {0x00, 0x01, 0x00, 0x01, 'x'},
		"zero":      {0, 0, 0, 0},
		"bad hello": append([]byte{0, 0, 0, 18}, "HELLO station=a.b "...),
		"garbage":   []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	for name, in := range cases {
		c := r.dial()
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(c) // the gateway explains, then closes
		if err != nil {
			t.Fatalf("%s: session not closed: %v", name, err)
		}
		if !strings.Contains(string(rest), "ERROR") {
			t.Fatalf("%s: no error message before close: %q", name, rest)
		}
	}
	trunc := r.dial()
	_, _ = trunc.Write([]byte{0, 0, 0, 10, 'a', 'b'})
	trunc.Close()

	send(t, good, mf1(1, 2, 0, "after"))
	send(t, good, []byte("GOODBYE"))
	bustest.Eventually(t, 10*time.Second, func() bool {
		n := 0
		for _, f := range r.ingested() {
			if f.StationID == "gs-good" {
				n++
			}
		}
		return n == 2
	}, "good session's frames not all stored")
}

// A client that never sends and a slowloris that trickles one byte at a
// time are both closed by the idle timeout without affecting others.
func TestIdleAndSlowlorisClosed(t *testing.T) {
	r := startGateway(t, gateway.Config{IdleTimeout: 300 * time.Millisecond})
	silent := r.dial()
	slow := r.dial()
	stop := make(chan struct{})
	defer close(stop)
	msg := append([]byte{0, 0, 0, 100}, make([]byte, 100)...)
	slowSent := make(chan int, 1)
	go func() { // the slowloris: a 100-byte frame, one byte every 50 ms (5.2 s in all)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i, b := range msg {
			select {
			case <-stop:
				slowSent <- i
				return
			case <-tick.C:
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				slowSent <- i
				return
			}
		}
		slowSent <- len(msg)
	}()
	for name, c := range map[string]net.Conn{"silent": silent, "slowloris": slow} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// Closed means EOF, or a reset when the server closed with unread
		// bytes; a timeout means the gateway kept the session open.
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s client not closed by the idle timeout: %v", name, err)
		}
	}
	// Closed because its frame did not arrive in time, not because it
	// ended: a byte now and then must not keep a frame's deadline moving.
	if n := <-slowSent; n == len(msg) {
		t.Fatalf("the slowloris wrote its whole %d-byte frame over 5 s; the 300 ms idle timeout should have closed it", n)
	}
	good := r.dial()
	send(t, good, []byte("hello"))
	r.waitFrames(1)
}

// A session whose publishes stall for longer than the idle timeout (here
// JetStream has no stream to store them) is not taken for idle when it
// comes back to its socket: the deadline counts from when the gateway is
// ready for the next frame, not from the last read before the stall.
func TestPublishStallLongerThanIdleIsNotIdle(t *testing.T) {
	const idle = 300 * time.Millisecond
	r := startGateway(t, gateway.Config{IdleTimeout: idle, Window: 1, MaxBatchFrames: 1})
	ctx := context.Background()
	if err := r.bus.JS.DeleteStream(ctx, schemas.StreamIngest); err != nil {
		t.Fatal(err)
	}
	outcome := func(o string) float64 {
		return metric(t, "meridian_gateway_sessions_total", map[string]string{"outcome": o})
	}
	idle0, goodbye0 := outcome("idle"), outcome("goodbye")
	read := func() float64 {
		return metric(t, "meridian_gateway_frames_total", map[string]string{"station": "gs-stall"})
	}
	read0 := read()
	// Everything in one write, so no step of the test's own races the
	// session's first deadline. One batch per frame and a window of one:
	// the second frame's publish waits for the first's ack, which cannot
	// come.
	var w bytes.Buffer
	for _, f := range [][]byte{[]byte("HELLO station=gs-stall format=mf1"), mf1(4, 1, 0, "before-1"), mf1(4, 2, 0, "before-2")} {
		_ = schemas.WriteFrame(&w, f)
	}
	c := r.dial()
	if _, err := c.Write(w.Bytes()); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return read()-read0 == 2 }, "the gateway did not read the two frames")
	stalled := time.Now()
	retried := metric(t, "meridian_bus_publish_total", map[string]string{"outcome": "retried"})
	bustest.Eventually(t, 10*time.Second, func() bool {
		return time.Since(stalled) > 3*idle &&
			metric(t, "meridian_bus_publish_total", map[string]string{"outcome": "retried"}) > retried
	}, "the publish did not stall")
	if err := bus.Provision(ctx, r.bus.JS, bus.ProvisionOptions{}); err != nil {
		t.Fatal(err)
	}
	send(t, c, mf1(4, 3, 0, "after"))
	send(t, c, []byte("GOODBYE"))
	bustest.Eventually(t, 10*time.Second, func() bool { return outcome("goodbye")+outcome("idle") > goodbye0+idle0 },
		"the session did not end")
	if n := outcome("idle") - idle0; n != 0 {
		t.Fatalf("the session was closed as idle after its publishes stalled; the station never was idle")
	}
	if fs := r.waitFrames(3); len(fs) != 3 {
		t.Fatalf("stored %d frames, sent 3", len(fs))
	}
}

func TestConnectionLimitRefusesClearly(t *testing.T) {
	r := startGateway(t, gateway.Config{MaxConns: 2})
	a, b := r.dial(), r.dial()
	send(t, a, []byte("a"))
	send(t, b, []byte("b"))
	bustest.Eventually(t, 5*time.Second, func() bool { return r.srv.Sessions() == 2 }, "two sessions not open")
	c := r.dial()
	p, err := readFrame(t, c, 5*time.Second)
	if err != nil || !strings.Contains(string(p), "too many connections") {
		t.Fatalf("third connection: %q %v", p, err)
	}
	send(t, a, []byte("still fine"))
	r.waitFrames(3)
}

// Criterion 4: shutdown lets a session finish the frame it is reading.
func TestShutdownFinishesFrameInFlight(t *testing.T) {
	r := startGateway(t, gateway.Config{DrainTimeout: 5 * time.Second, Linger: time.Hour})
	read0 := metric(t, "meridian_gateway_frames_total", map[string]string{"station": "gs-drain"})
	c := r.dial()
	send(t, c, []byte("HELLO station=gs-drain format=mf1"))
	send(t, c, mf1(3, 1, 0, "complete"))
	frame := mf1(3, 2, 0, strings.Repeat("z", 1000))
	wire := append(schemas.AppendFrameHeader(nil, len(frame)), frame...)
	if _, err := c.Write(wire[:500]); err != nil { // half a frame
		t.Fatal(err)
	}
	// The gateway has read the complete frame (so it is reading the second).
	bustest.Eventually(t, 5*time.Second, func() bool {
		return metric(t, "meridian_gateway_frames_total", map[string]string{"station": "gs-drain"}) == read0+1
	}, "first frame not read")
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	// The rest of the frame arrives after shutdown began.
	bustest.Eventually(t, 5*time.Second, func() bool {
		_, err := c.Write(nil)
		return err == nil
	}, "connection unusable")
	if _, err := c.Write(wire[500:]); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	fs := r.ingested()
	if len(fs) != 2 || len(fs[1].Payload) != 1000 {
		t.Fatalf("after shutdown stored %d frames (want 2, the second complete): %+v", len(fs), fs)
	}
}

// Criterion 5: a session stuck mid-frame is force-closed at the drain
// deadline and Run returns.
func TestShutdownForceClosesStuckSession(t *testing.T) {
	r := startGateway(t, gateway.Config{DrainTimeout: 300 * time.Millisecond})
	c := r.dial()
	send(t, c, []byte("x"))
	_, _ = c.Write([]byte{0, 0, 0, 50, 1, 2, 3}) // and never the rest
	r.waitFrames(1)
	began := time.Now()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 300*time.Millisecond+2*time.Second {
		t.Fatalf("Run returned %v after shutdown with a 300 ms drain deadline", took)
	}
}

// Commands that piled up while the station was away are written on its
// session highest priority first, and acked once written.
func TestCommandsWrittenBackInPriorityOrder(t *testing.T) {
	r := startGateway(t, gateway.Config{})
	ctx := context.Background()
	kinds := []schemas.CommandKind{schemas.CmdHousekeeping, schemas.CmdStatusRequest, schemas.CmdSafeMode, schemas.CmdAbortPass, schemas.CmdHousekeeping}
	for i, k := range kinds {
		c := schemas.Command{ID: fmt.Sprint("c", i), StationID: "gs-cmd", Kind: k, IssuedAtNs: int64(i)}
		data, _ := schemas.Marshal(&c)
		if _, err := r.bus.JS.Publish(ctx, "cmd.dispatch.gs-cmd", data); err != nil {
			t.Fatal(err)
		}
	}
	conn := r.dial()
	send(t, conn, []byte("HELLO station=gs-cmd format=mf1"))
	br := bufio.NewReader(conn)
	var got []string
	for range kinds {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := schemas.ReadFrame(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		var c schemas.Command
		if err := schemas.Decode(p, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c.ID)
	}
	if want := "c2 c3 c1 c0 c4"; strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
	st, _ := r.bus.JS.Stream(ctx, schemas.StreamDispatch)
	bustest.Eventually(t, 5*time.Second, func() bool { info, _ := st.Info(ctx); return info.State.Msgs == 0 },
		"written commands not acked out of the work queue")
	// A command dispatched while connected arrives promptly.
	live, _ := schemas.Marshal(&schemas.Command{ID: "live", StationID: "gs-cmd", Kind: schemas.CmdStatusRequest})
	if _, err := r.bus.JS.Publish(ctx, "cmd.dispatch.gs-cmd", live); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if p, err := schemas.ReadFrame(br, nil); err != nil || !strings.Contains(string(p), "live") {
		t.Fatalf("live command: %q %v", p, err)
	}
}

func TestStationTokenRequired(t *testing.T) {
	r := startGateway(t, gateway.Config{RequireToken: "s3cret"})
	for name, hello := range map[string]string{"no HELLO": "data", "no token": "HELLO station=gs-t", "wrong token": "HELLO station=gs-t token=guess"} {
		c := r.dial()
		send(t, c, []byte(hello))
		p, err := readFrame(t, c, 5*time.Second)
		if err != nil || !strings.HasPrefix(string(p), "ERROR") {
			t.Fatalf("%s: %q %v", name, p, err)
		}
	}
	ok := r.dial()
	send(t, ok, []byte("HELLO station=gs-t token=s3cret"))
	send(t, ok, []byte("accepted"))
	fs := r.waitFrames(1)
	if fs[0].StationID != "gs-t" || len(r.ingested()) != 1 {
		t.Fatalf("stored %+v", fs)
	}
}

// Emergency frames read while four of the station's emergency batches
// await their ack leave together with the next ack, none lost: here the
// acks are held by taking TLM_INGEST away (the publisher retries) until
// all the frames were read.
func TestEmergencyFramesWaitingForAnAckLeaveTogether(t *testing.T) {
	r := startGateway(t, gateway.Config{})
	ctx := context.Background()
	c := r.dial()
	send(t, c, []byte("HELLO station=gs-burst format=mf1"))
	kv, _ := r.bus.JS.KeyValue(ctx, schemas.BucketSessions)
	bustest.Eventually(t, 5*time.Second, func() bool {
		var st schemas.SessionState
		found, _ := bus.KVGet(ctx, kv, "gs-burst", &st)
		return found && st.Phase == schemas.PhaseConnected
	}, "session not connected")
	acksBefore := emergencyAcks(t)
	readBefore := metric(t, "meridian_gateway_frames_total", map[string]string{"station": "gs-burst"})
	if err := r.bus.JS.DeleteStream(ctx, schemas.StreamIngest); err != nil {
		t.Fatal(err)
	}
	const n = 14
	for i := range n {
		send(t, c, mf1(5, uint64(i+1), schemas.FlagEmergency, fmt.Sprintf("E%02d", i+1)))
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		return metric(t, "meridian_gateway_frames_total", map[string]string{"station": "gs-burst"})-readBefore == n
	}, "gateway did not read the %d frames", n)
	if err := bus.Provision(ctx, r.bus.JS, bus.ProvisionOptions{}); err != nil {
		t.Fatal(err)
	}
	fs := r.waitFrames(n)
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Priority != schemas.PriorityEmergency || seen[string(f.Payload)] {
			t.Fatalf("frame %+v: not emergency, or stored twice", f)
		}
		seen[string(f.Payload)] = true
	}
	if len(fs) != n {
		t.Fatalf("stored %d frames, sent %d", len(fs), n)
	}
	// Four batches of one frame were in flight; the other ten waited and
	// left as one batch.
	st, _ := r.bus.JS.Stream(ctx, schemas.StreamIngest)
	info, _ := st.Info(ctx) // the re-made stream holds only these batches
	if info.State.Msgs != 5 {
		t.Fatalf("%d emergency messages stored for %d frames, want 5 (4 in flight + 1 that waited)", info.State.Msgs, n)
	}
	// Latency is observed per frame, not per batch: the frames that waited
	// longest are not under-counted.
	bustest.Eventually(t, 5*time.Second, func() bool { return emergencyAcks(t)-acksBefore == n },
		"emergency ack latency observed %d times for %d frames", emergencyAcks(t)-acksBefore, n)
}

// emergencyAcks is how many emergency ack latencies the gateway observed.
func emergencyAcks(t *testing.T) uint64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_gateway_ack_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "priority" && l.GetValue() == "emergency" {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
