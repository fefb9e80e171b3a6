package sim_test

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/ops/sim"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

// A real TCP peer standing in for the gateway: it checks the wire format
// the simulator speaks.
type peer struct {
	mu        sync.Mutex
	hellos    map[string]bool
	frames    int
	emergency int
	bad       error
	goodbyes  atomic.Int64
}

func (p *peer) serve(t *testing.T, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			var buf []byte
			first := true
			for {
				f, err := schemas.ReadFrame(r, buf)
				if err != nil {
					return
				}
				buf = f
				p.mu.Lock()
				switch {
				case first:
					h, err := schemas.ParseHello(f)
					if err != nil || h.Format != "mf1" {
						p.bad = err
					}
					p.hellos[h.Station] = true
					first = false
				case schemas.IsGoodbye(f):
					p.goodbyes.Add(1)
				default:
					h, body, err := schemas.DecodeMF1(f)
					if err != nil || len(body) != 232 || h.SatelliteID == 0 || h.SatelliteID > 48 {
						p.bad = err
					}
					p.frames++
					if h.Flags&schemas.FlagEmergency != 0 {
						p.emergency++
					}
				}
				p.mu.Unlock()
			}
		}()
	}
}

func TestSimulatorSpeaksTheContract(t *testing.T) {
	b := bustest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &peer{hellos: map[string]bool{}}
	go p.serve(t, ln)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var detections atomic.Int64
	go func() {
		buf := make([]byte, 65507)
		for {
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := schemas.DecodeDetection(buf[:n]); err == nil {
				detections.Add(1)
			}
		}
	}()

	s, err := sim.New(sim.Config{GatewayAddr: ln.Addr().String(), UDPAddr: udp.LocalAddr().String(),
		FrameRate: 500, EmergencyRatio: 0.2, TLERate: 50, CommandRate: 50, Logger: bustest.Discard}, b.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	tleStream, _ := b.JS.Stream(context.Background(), schemas.StreamTLE)
	cmdStream, _ := b.JS.Stream(context.Background(), schemas.StreamCmd)
	bustest.Eventually(t, 15*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		ti, _ := tleStream.Info(context.Background())
		ci, _ := cmdStream.Info(context.Background())
		return len(p.hellos) == 12 && p.frames > 500 && p.emergency > 0 && detections.Load() > 10 &&
			ti != nil && ti.State.Msgs > 5 && ci != nil && ci.State.Msgs > 5
	}, "simulator did not reach every stage (stations, frames, emergency, detections, TLE updates, commands)")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, func() bool { return p.goodbyes.Load() == 12 }, "stations did not say GOODBYE on shutdown (%d)", p.goodbyes.Load())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bad != nil {
		t.Fatalf("simulator sent a bad frame: %v", p.bad)
	}

	// Every TLE the sources published is valid for the store.
	msg, err := tleStream.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var tle schemas.Tle
	if err := schemas.Decode(msg.Data, &tle); err != nil || tle.Source == "" {
		t.Fatalf("TLE update %+v: %v", tle, err)
	}
}

func TestCommandKindsMostlyRoutine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	counts := map[schemas.CommandKind]int{}
	for range 10000 {
		counts[sim.CommandKindForTest(r)]++
	}
	if counts[schemas.CmdSafeMode] > 300 || counts[schemas.CmdHousekeeping] < 4000 {
		t.Fatalf("kind mix %v", counts)
	}
}
