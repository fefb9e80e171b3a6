package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/schemas"
)

// latencies collects read-to-ack latencies by priority.
type latencies struct {
	mu                 sync.Mutex
	routine, emergency []time.Duration
}

func (l *latencies) add(p schemas.Priority, d time.Duration) {
	l.mu.Lock()
	if p == schemas.PriorityEmergency {
		l.emergency = append(l.emergency, d)
	} else {
		l.routine = append(l.routine, d)
	}
	l.mu.Unlock()
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkGateway48Clients: 48 stations stream 256-byte mf1 frames (1%
// emergency) as fast as the gateway takes them, into the embedded
// JetStream file store. b.N is the total number of frames; the run ends
// when JetStream has acked every batch.
func BenchmarkGateway48Clients(b *testing.B) { run48(b, 0) }

// BenchmarkGateway48ClientsAt500k offers 500,000 frames/s in total (48
// stations pacing themselves every millisecond), the goal rate, so the
// latencies show what a frame waits below saturation.
func BenchmarkGateway48ClientsAt500k(b *testing.B) { run48(b, 500_000) }

func run48(b *testing.B, rate int) {
	const clients, payload = 48, 256 - schemas.MF1HeaderSize
	var lat latencies
	bb := bustest.New(b, func(c *busConfig) { c.Logger = bustest.Discard })
	srv := gateway.New(bb, gateway.Config{Addr: "127.0.0.1:0", Logger: bustest.Discard, OnAck: lat.add})
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()

	per := max(b.N/clients, 1)
	total := per * clients
	body := make([]byte, payload)
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		_ = schemas.WriteFrame(c, []byte(fmt.Sprintf("HELLO station=bench-%02d format=mf1", i)))
		conns[i] = c
	}
	stream, _ := bb.JS.Stream(ctx, schemas.StreamIngest)
	before := counted(b, "meridian_gateway_frames_acked_total")
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriterSize(c, 256<<10)
			frame := make([]byte, 0, 4+schemas.MF1HeaderSize+payload)
			var tick *time.Ticker
			if rate > 0 { // keep to rate/clients frames a second, checked every millisecond
				tick = time.NewTicker(time.Millisecond)
				defer tick.Stop()
			}
			perClient := float64(rate) / clients
			began := time.Now()
			for j := range per {
				// Behind schedule: send; ahead: wait for the next tick and
				// flush (elapsed-time pacing catches up after missed ticks).
				for tick != nil && float64(j) >= perClient*time.Since(began).Seconds() {
					_ = w.Flush()
					<-tick.C
				}
				flags := uint8(0)
				if j%100 == 99 {
					flags = schemas.FlagEmergency
				}
				h := schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: uint64(j + 1), SatelliteID: uint32(i + 1), Flags: flags}
				frame = schemas.AppendFrameHeader(frame[:0], schemas.MF1HeaderSize+payload)
				frame = schemas.AppendMF1(frame, h, body)
				if _, err := w.Write(frame); err != nil {
					b.Error(err)
					return
				}
				if flags != 0 {
					_ = w.Flush()
				}
			}
			_ = w.Flush()
			sent.Add(int64(per))
		}()
	}
	wg.Wait()
	// Done when the gateway has read everything and JetStream acked it all.
	for counted(b, "meridian_gateway_frames_acked_total")-before < float64(total) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	info, _ := stream.Info(ctx)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(pct(lat.routine, 0.50).Microseconds()), "routine-p50-µs")
	b.ReportMetric(float64(pct(lat.routine, 0.99).Microseconds()), "routine-p99-µs")
	b.ReportMetric(float64(pct(lat.emergency, 0.50).Microseconds()), "emergency-p50-µs")
	b.ReportMetric(float64(pct(lat.emergency, 0.99).Microseconds()), "emergency-p99-µs")
	b.ReportMetric(float64(info.State.Bytes)/float64(total), "stored-B/frame")
}

func counted(b *testing.B, name string) float64 {
	return metricB(b, name)
}

func inflight(b *testing.B) float64 { return metricB(b, "meridian_bus_publish_inflight") }

// BenchmarkUDPDetections sends b.N detections from 4 senders and reports
// the published rate and how many were dropped at the hand-off.
func BenchmarkUDPDetections(b *testing.B) {
	bb := bustest.New(b, func(c *busConfig) { c.Logger = bustest.Discard })
	u := gateway.NewUDP(bb, gateway.UDPConfig{Addr: "127.0.0.1:0", Logger: bustest.Discard})
	if err := u.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pub0 := metricLabels(b, "meridian_gateway_udp_datagrams_total", "outcome", "published")
	drop0 := metricLabels(b, "meridian_gateway_udp_datagrams_total", "outcome", "dropped")
	d := schemas.AppendDetection(nil, schemas.Detection{SensorID: 7, Azimuth: 10, Elevation: 20, RangeKm: 500})
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, _ = c.Write(d)
	}
	// Wait for the publishers to finish what was handed off.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && inflight(b) > 0 {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	pub := metricLabels(b, "meridian_gateway_udp_datagrams_total", "outcome", "published") - pub0
	drop := metricLabels(b, "meridian_gateway_udp_datagrams_total", "outcome", "dropped") - drop0
	b.ReportMetric(float64(b.N)/el.Seconds(), "sent/s")
	b.ReportMetric(pub/el.Seconds(), "published/s")
	b.ReportMetric(drop, "dropped")
}
