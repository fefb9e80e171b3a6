package gsclient_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/schemas"
)

// blobStation serves n pre-encoded mf1 frames (payloadSize bytes of
// telemetry each) in large writes, then holds the connection open, so the
// benchmark measures the client, not the station.
func blobStation(b *testing.B, n, payloadSize int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, payloadSize)
	var blob []byte
	for i := range n {
		p := schemas.AppendMF1(nil, schemas.MF1Header{Sequence: uint64(i + 1), SatelliteID: 7,
			Flags: uint8(i % 50 / 49)}, body) // 2 % emergency
		blob = append(schemas.AppendFrameHeader(blob, len(p)), p...)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		for off := 0; off < len(blob); off += 256 << 10 {
			if _, err := conn.Write(blob[off:min(off+256<<10, len(blob))]); err != nil {
				return
			}
		}
		_, _ = conn.Read(make([]byte, 64)) // until the client says GOODBYE or closes
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// The read loop alone: TCP read, mf1 decode, Frame build, hand-off.
func BenchmarkReadLoop(b *testing.B) {
	addr := blobStation(b, b.N, 64)
	out := make(chan schemas.Frame, 4096)
	drained := make(chan int)
	go func() {
		n := 0
		for range out {
			n++
		}
		drained <- n
	}()
	c, err := gsclient.New(nil, bustest.Discard, gsclient.Config{Station: "gs-bench", Addr: addr}, gsclient.WithOutput(out))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	for c.Stats().FramesRead < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	close(out)
	n := <-drained
	st := c.Stats()
	if uint64(n)+st.FramesDropped != uint64(b.N) {
		b.Fatalf("forwarded %d + dropped %d != %d", n, st.FramesDropped, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(st.FramesDropped), "dropped")
}

// End to end: read, hand-off, batch, publish to TLM_INGEST on an embedded
// NATS server and wait for every ack (Run drains before returning). The
// hand-off holds all b.N frames so none is dropped: this measures the
// publishing stage's throughput.
func BenchmarkReadAndPublish(b *testing.B) {
	bs := bustest.New(b)
	addr := blobStation(b, b.N, 64)
	c, err := gsclient.New(bs.JS, bustest.Discard, gsclient.Config{Station: "gs-bench", Addr: addr, QueueSize: b.N,
		ShutdownTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	for c.Stats().FramesRead < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	info, err := bs.JS.Stream(context.Background(), schemas.StreamIngest)
	if err != nil {
		b.Fatal(err)
	}
	if st := c.Stats(); st.FramesDropped != 0 {
		b.Fatalf("%d frames dropped", st.FramesDropped)
	}
	msgs := info.CachedInfo().State.Msgs
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(b.N)/float64(max(msgs, 1)), "frames/batch")
}
