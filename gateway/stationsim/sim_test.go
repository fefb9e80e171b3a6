package stationsim_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg stationsim.Config) *stationsim.Server {
	t.Helper()
	s := stationsim.New(cfg, nil)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestStreamsMF1FramesWithEmergencyRatio(t *testing.T) {
	s := start(t, stationsim.Config{Rate: -1, Satellites: []uint32{7, 9}, EmergencyRatio: 0.25, PayloadSize: 32,
		StationNum: 3, MaxFrames: 2000, Seed: 42})
	c := dial(t, s.Addr())
	seq := map[uint32]uint64{}
	emerg := 0
	var buf []byte
	for i := range 2000 {
		p, err := schemas.ReadFrame(c, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		h, body, err := schemas.DecodeMF1(p)
		if err != nil {
			t.Fatal(err)
		}
		wantSat := []uint32{7, 9}[i%2]
		if h.SatelliteID != wantSat || h.StationID != 3 || len(body) != 32 || h.Sequence != seq[wantSat]+1 {
			t.Fatalf("frame %d: %+v (%d bytes)", i, h, len(body))
		}
		seq[wantSat] = h.Sequence
		if h.Flags&schemas.FlagEmergency != 0 {
			emerg++
		}
	}
	if emerg < 400 || emerg > 600 { // 2000 draws at p=0.25: mean 500, sd about 19
		t.Fatalf("%d emergency frames of 2000 at ratio 0.25", emerg)
	}
}

func TestDropAfterClosesConnection(t *testing.T) {
	s := start(t, stationsim.Config{Rate: -1, DropAfter: 5})
	c := dial(t, s.Addr())
	for i := range 5 {
		if _, err := schemas.ReadFrame(c, nil); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := schemas.ReadFrame(c, nil); err == nil {
		t.Fatal("connection still open after DropAfter frames")
	}
}

func TestRefuseAndResume(t *testing.T) {
	s := start(t, stationsim.Config{})
	addr := s.Addr()
	s.Refuse()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("dial succeeded while refusing")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	if _, err := schemas.ReadFrame(c, nil); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr || s.Stats().Accepted != 1 {
		t.Fatalf("addr %s stats %+v", s.Addr(), s.Stats())
	}
}

func TestGoodbyeEndsStream(t *testing.T) {
	s := start(t, stationsim.Config{Rate: 1000})
	c := dial(t, s.Addr())
	if _, err := schemas.ReadFrame(c, nil); err != nil {
		t.Fatal(err)
	}
	if err := schemas.WriteFrame(c, schemas.GoodbyeFrame()); err != nil {
		t.Fatal(err)
	}
	// The station stops streaming and closes: reading ends in EOF.
	for {
		_, err := schemas.ReadFrame(c, nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if g := s.Stats().Goodbyes; g != 1 {
		t.Fatalf("goodbyes %d", g)
	}
}

func TestHoldLargeFrameSendsInTwoHalves(t *testing.T) {
	s := start(t, stationsim.Config{Rate: 1000})
	c := dial(t, s.Addr())
	if _, err := schemas.ReadFrame(c, nil); err != nil {
		t.Fatal(err)
	}
	split := s.HoldLargeFrame(40_000)
	<-split.Sent()
	select {
	case <-split.Done():
		t.Fatal("large frame finished before Release")
	default:
	}
	split.Release()
	for {
		p, err := schemas.ReadFrame(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 40_000 {
			h, body, err := schemas.DecodeMF1(p)
			if err != nil || h.Sequence != split.Header.Sequence || len(body) != len(split.Body) {
				t.Fatalf("large frame %+v err %v", h, err)
			}
			break
		}
	}
	<-split.Done()
}

func TestRunBeforeListen(t *testing.T) {
	if err := stationsim.New(stationsim.Config{}, nil).Run(context.Background()); !errors.Is(err, stationsim.ErrNotListening) {
		t.Fatalf("err %v", err)
	}
}

func TestRunAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 2)
	done := make(chan error, 1)
	go func() {
		done <- stationsim.RunAll(ctx, nil, func(_ int, a string) { addrs <- a },
			stationsim.Config{StationNum: 1, Rate: 1000}, stationsim.Config{StationNum: 2, Rate: 1000})
	}()
	for want := range uint8(2) {
		c := dial(t, <-addrs)
		p, err := schemas.ReadFrame(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h, _, err := schemas.DecodeMF1(p); err != nil || h.StationID != want+1 {
			t.Fatalf("station %d sent %+v (%v)", want+1, h, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
