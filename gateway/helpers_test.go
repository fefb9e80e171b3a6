package gateway_test

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

type rig struct {
	t      *testing.T
	bus    *bus.Bus
	srv    *gateway.Server
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs a gateway on a free port against a fresh embedded NATS.
func startGateway(t *testing.T, cfg gateway.Config) *rig {
	t.Helper()
	b := bustest.New(t)
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = bustest.Logger(t)
	}
	if cfg.Conns == 0 {
		cfg.Conns = 2
	}
	srv := gateway.New(b, cfg)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, bus: b, srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-r.done:
		t.Fatalf("gateway did not start: %v", err)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

var stopOnce sync.Map

func (r *rig) stop() error {
	if _, loaded := stopOnce.LoadOrStore(r, true); loaded {
		return nil
	}
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(15 * time.Second):
		r.t.Fatal("gateway did not stop")
		return nil
	}
}

func (r *rig) dial() net.Conn {
	r.t.Helper()
	c, err := net.Dial("tcp", r.srv.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, payload []byte) {
	t.Helper()
	if err := schemas.WriteFrame(c, payload); err != nil {
		t.Fatal(err)
	}
}

func mf1(sat uint32, seq uint64, flags uint8, body string) []byte {
	return schemas.AppendMF1(nil, schemas.MF1Header{TimestampMs: 1_764_000_000_000 + seq, Sequence: seq, SatelliteID: sat, Flags: flags}, []byte(body))
}

// ingested reads every frame stored in TLM_INGEST so far, in stream order.
func (r *rig) ingested() []schemas.Frame {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.bus.JS.Stream(ctx, schemas.StreamIngest)
	if err != nil {
		r.t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	var out []schemas.Frame
	if info.State.Msgs == 0 {
		return nil
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		r.t.Fatal(err)
	}
	for range info.State.Msgs {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		var b schemas.FrameBatch
		if err := schemas.Decode(m.Data(), &b); err != nil {
			r.t.Fatalf("stored batch does not decode: %v", err)
		}
		out = append(out, b.Frames...)
	}
	return out
}

func (r *rig) waitFrames(n int) []schemas.Frame {
	r.t.Helper()
	var fs []schemas.Frame
	bustest.Eventually(r.t, 15*time.Second, func() bool { fs = r.ingested(); return len(fs) >= n }, "want %d frames ingested", n)
	return fs
}

// readFrames reads length-prefixed frames the gateway writes back.
func readFrame(t *testing.T, c net.Conn, timeout time.Duration) ([]byte, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	return schemas.ReadFrame(bufio.NewReader(c), nil)
}

type busConfig = bus.Config
