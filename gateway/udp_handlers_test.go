package gateway_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/schemas"
)

func TestUDPDetectionsPublishedMalformedCounted(t *testing.T) {
	b := bustest.New(t)
	u := gateway.NewUDP(b, gateway.UDPConfig{Addr: "127.0.0.1:0", Logger: bustest.Logger(t)})
	if err := u.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, _ := b.Conn.SubscribeSync("sda.detections.>")
	_ = b.Conn.Flush()
	d := schemas.Detection{SensorID: 42, Azimuth: 123.5, Elevation: 45, RangeKm: 900, TimestampMs: 1_764_000_000_000}
	bad := [][]byte{make([]byte, 23), make([]byte, 200), schemas.AppendDetection(nil, schemas.Detection{Azimuth: 720})}
	for _, p := range bad {
		_, _ = c.Write(p)
	}
	// UDP may drop on loopback under load: resend until one arrives.
	var got schemas.Detection
	bustest.Eventually(t, 10*time.Second, func() bool {
		_, _ = c.Write(schemas.AppendDetection(nil, d))
		m, err := sub.NextMsg(50 * time.Millisecond)
		if err != nil {
			return false
		}
		if m.Subject != "sda.detections.42" {
			t.Fatalf("published on %s", m.Subject)
		}
		return schemas.Decode(m.Data, &got) == nil
	}, "no detection published")
	if got != d {
		t.Fatalf("published %+v, want %+v", got, d)
	}
	if n := metric(t, "meridian_gateway_udp_datagrams_total", map[string]string{"outcome": "malformed"}); n < 3 {
		t.Fatalf("malformed datagrams counted: %v, want >= 3", n)
	}
}

// Criteria 2 and 3: every handler receives every frame; a stuck handler
// lags alone while ingestion and the other handler go on.
func TestHandlersEachSeeEveryFrameSlowOneLagsAlone(t *testing.T) {
	r := startGateway(t, gateway.Config{Linger: time.Millisecond})
	release := make(chan struct{})
	var slowSeen atomic.Int64
	h := gateway.NewHandlers(r.bus, gateway.HandlersConfig{Count: 2, Logger: bustest.Logger(t),
		Work: func(ctx context.Context, i int, b *schemas.FrameBatch) {
			if i == 1 {
				slowSeen.Add(int64(len(b.Frames)))
				select { // handler 1 is stuck until released
				case <-release:
				case <-ctx.Done():
				}
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Consumers exist before frames arrive (they start at new messages).
	bustest.Eventually(t, 5*time.Second, func() bool {
		_, e0 := r.bus.JS.Consumer(ctx, schemas.StreamIngest, gateway.Name(0))
		_, e1 := r.bus.JS.Consumer(ctx, schemas.StreamIngest, gateway.Name(1))
		return e0 == nil && e1 == nil
	}, "handler consumers not created")

	c := r.dial()
	send(t, c, []byte("HELLO station=gs-h format=mf1"))
	const n = 300
	for i := range n {
		send(t, c, mf1(1, uint64(i+1), 0, "x"))
	}
	r.waitFrames(n) // ingestion completed while handler 1 is stuck
	bustest.Eventually(t, 10*time.Second, func() bool { return h.Frames(0) == n }, "fast handler saw %d of %d", h.Frames(0), n)
	if h.Frames(1) >= n {
		t.Fatal("stuck handler was not behind")
	}
	close(release)
	bustest.Eventually(t, 10*time.Second, func() bool { return h.Frames(1) == n }, "released handler caught up to %d of %d", h.Frames(1), n)
}
