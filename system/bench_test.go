package system_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/system"
)

// BenchmarkPipelineEndToEnd: 48 stations stream 256-byte mf1 frames (1%
// emergency) into the all-in-one system as fast as it takes them; the run
// ends when the processor has processed every frame (KV pipeline stats).
// It reports end-to-end frames/s and the latency of emergency frames from
// the station's send to their arrival on tlm.processed.
func BenchmarkPipelineEndToEnd(b *testing.B) {
	const clients = 48
	cfg := system.Config{DataDir: b.TempDir(), NATSAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0", Logger: bustest.Discard, Only: []string{"processor", "fanin", "router", "gateway"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := system.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	// Emergency frames: sent-at by sequence, seen on tlm.processed.
	var mu sync.Mutex
	sentAt := map[uint64]time.Time{}
	var lat []time.Duration
	nc, _ := nats.Connect(s.Bus.URL)
	defer nc.Close()
	sub, _ := nc.Subscribe("tlm.processed.>", func(m *nats.Msg) {
		var fb schemas.FrameBatch
		if schemas.Unmarshal(m.Data, &fb) != nil {
			return
		}
		now := time.Now()
		mu.Lock()
		for _, f := range fb.Frames {
			if f.Flags&schemas.FlagEmergency != 0 {
				if t0, ok := sentAt[f.Sequence]; ok {
					lat = append(lat, now.Sub(t0))
				}
			}
		}
		mu.Unlock()
	})
	_ = sub.SetPendingLimits(-1, -1)
	_ = nc.Flush()

	per := max(b.N/clients, 1)
	total := per * clients
	body := make([]byte, 256-schemas.MF1HeaderSize)
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", s.Gateway.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		_ = schemas.WriteFrame(c, []byte(fmt.Sprintf("HELLO station=e2e-%02d format=mf1", i)))
		conns[i] = c
	}
	kv, _ := s.Bus.JS.KeyValue(ctx, schemas.BucketStats)
	processed := func() uint64 {
		var ps schemas.PipelineStats
		_, _ = bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return ps.FramesProcessed
	}
	base := processed()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriterSize(c, 256<<10)
			frame := make([]byte, 0, 300)
			for j := range per {
				seq := uint64(i)<<32 | uint64(j+1)
				h := schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: seq, SatelliteID: uint32(i + 1)}
				if j%100 == 99 {
					h.Flags = schemas.FlagEmergency
					mu.Lock()
					sentAt[seq] = time.Now()
					mu.Unlock()
				}
				frame = schemas.AppendFrameHeader(frame[:0], schemas.MF1HeaderSize+len(body))
				frame = schemas.AppendMF1(frame, h, body)
				_, _ = w.Write(frame)
				if h.Flags != 0 {
					_ = w.Flush()
				}
			}
			_ = w.Flush()
		}()
	}
	wg.Wait()
	for processed()-base < uint64(total) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d frames processed", processed()-base, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	p := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*q))].Microseconds())
	}
	b.ReportMetric(float64(total)/el.Seconds(), "frames/s")
	b.ReportMetric(p(0.50), "emergency-p50-µs")
	b.ReportMetric(p(0.99), "emergency-p99-µs")
	mu.Unlock()
}
