package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// Config configures the TCP gateway. The zero value listens on
// 0.0.0.0:7777 with the documented defaults.
type Config struct {
	Addr        string        // default 0.0.0.0:7777
	MaxConns    int           // default 1024; further connections are refused with a message
	IdleTimeout time.Duration // a frame must arrive within this; default 60 s
	// Linger is how long a routine frame may wait for more to fill its
	// batch; default 10 ms (emergency frames never wait, so routine
	// batches can afford to fill: fewer, larger messages for every stage).
	Linger         time.Duration
	MaxBatchFrames int // default 512
	MaxBatchBytes  int // default 256 KiB of payload
	// Window is how many batches per session may await their ack before the
	// session stops reading its socket; default 16.
	Window       int
	DrainTimeout time.Duration // default 10 s
	// Conns is how many NATS connections the sessions share (round robin),
	// so one socket's flusher is not the bottleneck; default 4.
	Conns int
	// RequireToken, when set, is the token every station must present in
	// its HELLO (token=...); sessions without it are refused.
	RequireToken string
	// OnAck, when set, is told each frame's read-to-ack latency (per
	// emergency frame, per routine batch from its oldest frame's read); benchmarks use it for exact
	// percentiles beyond the histogram's buckets.
	OnAck  func(p schemas.Priority, latency time.Duration)
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = "0.0.0.0:7777"
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.Linger <= 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.MaxBatchFrames <= 0 {
		c.MaxBatchFrames = 512
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 256 << 10
	}
	if c.Window <= 0 {
		c.Window = 16
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the TCP gateway.
type Server struct {
	cfg Config
	bus *bus.Bus
	log *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	sessions map[*session]struct{}
	conns    []*nats.Conn
	js       []jetstream.JetStream
	ejs      jetstream.JetStream // the sessions' emergency lane: its own connection
	sources  jetstream.KeyValue
	states   jetstream.KeyValue
	next     atomic.Uint64 // session numbers, for gs-<n>@<addr>
	ready    chan struct{}
}

// New returns a gateway publishing through b.
func New(b *bus.Bus, cfg Config) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, bus: b, log: cfg.Logger, sessions: map[*session]struct{}{}, ready: make(chan struct{})}
}

// Listen binds the address; Run calls it when the caller did not.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return nil
}

// Addr is the bound address (nil before Listen).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Ready is closed once the gateway accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run accepts stations until ctx ends, then drains (see the package doc).
func (s *Server) Run(ctx context.Context) error {
	if s.Addr() == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if err := s.connect(ctx); err != nil {
		s.ln.Close()
		s.closeConns()
		if ctx.Err() != nil {
			return nil // asked to stop while starting
		}
		return err
	}
	defer s.closeConns()
	s.log.Info("gateway listening", "addr", s.Addr().String(), "max_conns", s.cfg.MaxConns)
	close(s.ready)

	var wg sync.WaitGroup
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		s.accept(ctx, &wg)
	}()
	<-ctx.Done()
	s.ln.Close() // stop accepting
	<-acceptDone

	deadline := time.Now().Add(s.cfg.DrainTimeout)
	s.mu.Lock()
	for ss := range s.sessions {
		ss.stop(deadline)
	}
	n := len(s.sessions)
	s.mu.Unlock()
	s.log.Info("gateway draining", "sessions", n, "deadline", s.cfg.DrainTimeout)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(time.Until(deadline)):
	}
	s.mu.Lock()
	left := len(s.sessions)
	for ss := range s.sessions {
		ss.conn.Close() // force: the frame in flight is abandoned
	}
	s.mu.Unlock()
	s.log.Warn("gateway drain deadline passed; sessions force-closed", "sessions", left)
	select {
	case <-done:
	case <-time.After(time.Second):
		s.log.Error("gateway sessions still running after force close")
	}
	return nil
}

func (s *Server) connect(ctx context.Context) error {
	for i := range s.cfg.Conns {
		nc, err := s.bus.Connect(fmt.Sprintf("meridian-gateway-%d", i))
		if err != nil {
			return err
		}
		js, err := bus.NewJetStream(nc)
		if err != nil {
			nc.Close()
			return err
		}
		s.conns = append(s.conns, nc)
		s.js = append(s.js, js)
	}
	// Emergency frames get a connection of their own, so they never queue
	// behind routine batches in a socket's outbound buffer.
	nc, err := s.bus.Connect("meridian-gateway-emergency")
	if err != nil {
		return err
	}
	s.conns = append(s.conns, nc)
	if s.ejs, err = bus.NewJetStream(nc); err != nil {
		return err
	}
	if s.sources, err = s.js[0].KeyValue(ctx, schemas.BucketSources); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if s.states, err = s.js[0].KeyValue(ctx, schemas.BucketSessions); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

func (s *Server) closeConns() {
	for _, nc := range s.conns {
		_ = nc.FlushTimeout(2 * time.Second)
		nc.Close()
	}
}

func (s *Server) accept(ctx context.Context, wg *sync.WaitGroup) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("gateway accept", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		s.mu.Lock()
		if len(s.sessions) >= s.cfg.MaxConns {
			s.mu.Unlock()
			sessionsTotal.WithLabelValues("refused").Inc()
			s.log.Warn("gateway connection refused: limit reached", "remote", c.RemoteAddr().String(), "max_conns", s.cfg.MaxConns)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_ = schemas.WriteFrame(c, []byte(fmt.Sprintf("ERROR too many connections (max %d)", s.cfg.MaxConns)))
			c.Close()
			continue
		}
		n := s.next.Add(1)
		ss := newSession(s, c, n, s.js[int(n)%len(s.js)], s.ejs)
		s.sessions[ss] = struct{}{}
		s.mu.Unlock()
		sessionsTotal.WithLabelValues("accepted").Inc()
		sessionsActive.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sessionsActive.Dec()
			ss.run(ctx)
			s.mu.Lock()
			delete(s.sessions, ss)
			s.mu.Unlock()
		}()
	}
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
