package stationsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/schemas"
)

// Config configures a simulated station. The zero value streams 10 mf1
// frames a second for satellite 1 on a free loopback port.
type Config struct {
	Addr       string   // listen address; default 127.0.0.1:0
	StationNum uint8    // the mf1 header's station_id byte
	Satellites []uint32 // satellites whose frames are sent, round-robin; default {1}
	// Rate is frames per second per connection (default 10); negative
	// sends as fast as the connection takes them.
	Rate float64
	// EmergencyRatio is the fraction of frames flagged emergency, in [0,1].
	EmergencyRatio float64
	// PayloadSize is the telemetry bytes after the 24-byte header (default 64).
	PayloadSize int
	// DropAfter closes every connection after that many frames
	// (0: never), so clients see EOF and must reconnect.
	DropAfter int
	// MaxFrames stops streaming after that many frames per connection but
	// keeps it open (0: no limit).
	MaxFrames int
	// WriteTimeout bounds one frame write to a client that stopped reading
	// (default 10 s); the connection is then closed.
	WriteTimeout time.Duration
	Seed         uint64 // seeds the emergency draw
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if len(c.Satellites) == 0 {
		c.Satellites = []uint32{1}
	}
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.PayloadSize <= 0 {
		c.PayloadSize = 64
	}
	c.PayloadSize = min(c.PayloadSize, schemas.MaxFrameSize-schemas.MF1HeaderSize)
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
}

// ErrNotListening is returned by Run before Listen.
var ErrNotListening = errors.New("stationsim: not listening")

// Server is one simulated station.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	ln      net.Listener // nil while refusing
	addr    string       // the bound address, kept across Refuse/Resume
	ctx     context.Context
	conns   map[*conn]struct{}
	held    *Split
	wg      sync.WaitGroup
	rng     *rand.Rand
	seq     map[uint32]uint64
	nextSat int

	accepted, sent, goodbyes atomic.Uint64
}

// New makes a station; Listen binds it, Run serves it.
func New(cfg Config, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log, conns: map[*conn]struct{}{}, seq: map[uint32]uint64{},
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
}

// Listen binds the listen address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("stationsim: listen %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	s.mu.Unlock()
	return nil
}

// Addr is the bound host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run accepts and streams until ctx ends, then closes every connection
// and returns nil.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.addr == "" {
		s.mu.Unlock()
		return ErrNotListening
	}
	s.ctx = ctx
	if s.ln != nil { // nil when Refuse came first
		s.startAccept(s.ln)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// startAccept runs an accept loop for ln; s.mu is held.
func (s *Server) startAccept(ln net.Listener) {
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return // closed by Refuse or Run
			}
			s.accepted.Add(1)
			c := &conn{nc: nc.(*net.TCPConn), stop: make(chan struct{})}
			s.mu.Lock()
			if s.ctx.Err() != nil {
				s.mu.Unlock()
				nc.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
}

// Refuse closes the listener: new dials get "connection refused" until
// Resume. Open connections stay up.
func (s *Server) Refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// Resume listens again on the same address after Refuse.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	if s.addr == "" || (s.ctx != nil && s.ctx.Err() != nil) {
		return ErrNotListening
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("stationsim: relisten %s: %w", s.addr, err)
	}
	s.ln = ln
	if s.ctx != nil { // else Run starts the accept loop
		s.startAccept(ln)
	}
	return nil
}

// DropConnections closes every open connection abruptly and returns how
// many there were.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return len(s.conns)
}

// Stats are the station's counters.
type Stats struct {
	Accepted   uint64 // connections accepted
	Open       int    // connections open now
	FramesSent uint64 // complete frames written
	Goodbyes   uint64 // GOODBYE frames received from clients
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	return Stats{Accepted: s.accepted.Load(), Open: open, FramesSent: s.sent.Load(), Goodbyes: s.goodbyes.Load()}
}

// Split is a large frame sent in two halves with a pause between them, to
// test that a client shutting down finishes the frame it is reading.
type Split struct {
	Header  schemas.MF1Header
	Body    []byte // the telemetry after the header
	sent    chan struct{}
	release chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Sent is closed once the length prefix and the first half are written.
func (p *Split) Sent() <-chan struct{} { return p.sent }

// Release lets the second half go.
func (p *Split) Release() { p.once.Do(func() { close(p.release) }) }

// Done is closed when the whole frame was written (or its connection ended).
func (p *Split) Done() <-chan struct{} { return p.done }

// HoldLargeFrame makes the next frame on some connection an mf1 frame of
// size bytes (header included, at most 65,536) sent as a Split.
func (s *Server) HoldLargeFrame(size int) *Split {
	size = max(min(size, schemas.MaxFrameSize), schemas.MF1HeaderSize+2)
	body := make([]byte, size-schemas.MF1HeaderSize)
	for i := range body {
		body[i] = byte(i*7 + 3)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sat := s.cfg.Satellites[0]
	s.seq[sat]++
	p := &Split{Header: schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: s.seq[sat],
		SatelliteID: sat, StationID: s.cfg.StationNum}, Body: body,
		sent: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	s.held = p
	return p
}

type conn struct {
	nc   *net.TCPConn
	stop chan struct{} // closed when the client said GOODBYE
}

// serve streams frames to one client and reads what it sends back.
func (s *Server) serve(c *conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.nc.Close()
	}()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.readClient(c)
	}()
	s.stream(c)
	// After GOODBYE (or a write failure) close our side, then let the
	// reader see the client's close.
	_ = c.nc.CloseWrite()
	select {
	case <-readerDone:
	case <-time.After(2 * time.Second):
	}
}

// readClient reads the client's frames: GOODBYE stops the stream.
func (s *Server) readClient(c *conn) {
	var buf []byte
	stopped := false
	for {
		p, err := schemas.ReadFrame(c.nc, buf)
		if err != nil {
			if !stopped {
				close(c.stop)
			}
			return
		}
		buf = p[:cap(p)]
		if schemas.IsGoodbye(p) && !stopped {
			s.goodbyes.Add(1)
			s.log.Info("client said GOODBYE", "remote", c.nc.RemoteAddr().String())
			close(c.stop)
			stopped = true
		}
	}
}

func (s *Server) stream(c *conn) {
	var tick <-chan time.Time
	if s.cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	buf := make([]byte, 0, 4+schemas.MF1HeaderSize+s.cfg.PayloadSize)
	body := make([]byte, s.cfg.PayloadSize)
	for n := 0; ; {
		if s.cfg.DropAfter > 0 && n >= s.cfg.DropAfter {
			// A plain close (FIN), not a reset: a reset would make the
			// client's kernel discard frames it has not read yet.
			c.nc.Close()
			return
		}
		idle := false
		if p := s.takeHeld(); p != nil {
			if !s.sendSplit(c, p) {
				return
			}
			n++
		} else if s.cfg.MaxFrames <= 0 || n < s.cfg.MaxFrames {
			h := s.nextHeader()
			for j := range body {
				body[j] = byte(h.Sequence) + byte(j)
			}
			payload := schemas.AppendMF1(buf[4:4], h, body)
			frame := append(schemas.AppendFrameHeader(buf[:0], len(payload)), payload...)
			_ = c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := c.nc.Write(frame); err != nil {
				return
			}
			s.sent.Add(1)
			n++
		} else {
			idle = true // streamed MaxFrames: only held frames and GOODBYE now
		}
		var wait <-chan time.Time
		switch {
		case idle:
			wait = time.After(5 * time.Millisecond)
		case tick != nil:
			wait = tick
		default: // unthrottled
			select {
			case <-c.stop:
				return
			default:
				continue
			}
		}
		select {
		case <-c.stop:
			return
		case <-wait:
		}
	}
}

func (s *Server) takeHeld() *Split {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.held
	s.held = nil
	return p
}

func (s *Server) nextHeader() schemas.MF1Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	sat := s.cfg.Satellites[s.nextSat%len(s.cfg.Satellites)]
	s.nextSat++
	s.seq[sat]++
	var flags uint8
	if s.cfg.EmergencyRatio > 0 && s.rng.Float64() < s.cfg.EmergencyRatio {
		flags |= schemas.FlagEmergency
	}
	return schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: s.seq[sat],
		SatelliteID: sat, StationID: s.cfg.StationNum, Flags: flags}
}

// sendSplit writes p in two halves around its release; false if the
// connection ended.
func (s *Server) sendSplit(c *conn, p *Split) bool {
	defer close(p.done)
	payload := schemas.AppendMF1(nil, p.Header, p.Body)
	frame := append(schemas.AppendFrameHeader(nil, len(payload)), payload...)
	half := 4 + len(payload)/2
	_ = c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := c.nc.Write(frame[:half]); err != nil {
		return false
	}
	close(p.sent)
	select {
	case <-p.release:
	case <-c.stop:
		return false
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := c.nc.Write(frame[half:]); err != nil {
		return false
	}
	s.sent.Add(1)
	return true
}

// RunAll listens on every config's address, reports each bound address
// through onListen (may be nil), and serves them all until ctx ends. It is
// what `meridian sim stations` runs.
func RunAll(ctx context.Context, log *slog.Logger, onListen func(i int, addr string), cfgs ...Config) error {
	servers := make([]*Server, len(cfgs))
	for i, cfg := range cfgs {
		servers[i] = New(cfg, log)
		if err := servers[i].Listen(); err != nil {
			for _, s := range servers[:i] {
				s.Refuse()
			}
			return err
		}
		if onListen != nil {
			onListen(i, servers[i].Addr())
		}
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { _ = s.Run(ctx) })
	}
	wg.Wait()
	return nil
}
