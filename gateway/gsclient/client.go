package gsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/schemas"
)

// Errors returned by Client.Run.
var (
	// ErrFailed is returned (wrapped, with the last connection error) when
	// reconnection kept failing for Config.FailAfter; the station's state
	// is then Failed.
	ErrFailed = errors.New("gsclient: station failed")
	// ErrRunning is returned by a second concurrent Run of one Client.
	ErrRunning = errors.New("gsclient: client already running")
)

// Origin is the SessionState.Origin of sessions this package owns.
const Origin = "gs-client"

// Client owns one station's session: it dials, reads frames, forwards them,
// reconnects with backoff and publishes every state transition.
type Client struct {
	cfg     Config
	js      jetstream.JetStream // nil: no bus (frames go to WithOutput, states to WithStateHook)
	log     *slog.Logger
	clk     clock.Clock
	pub     *bus.Publisher // shared (WithPublisher) or made by Run
	out     chan<- schemas.Frame
	onState func(schemas.SessionState)
	fetcher *TLEFetcher

	running  atomic.Bool
	state    atomic.Pointer[schemas.SessionState]
	tle      atomic.Pointer[schemas.Tle]
	midFrame atomic.Bool
	stats    struct{ read, forwarded, dropped, invalid, sessions atomic.Uint64 }

	sessionsKV, sourcesKV jetstream.KeyValue
	registered            bool
	lastTLE               time.Time // start of the last successful TLE fetch (refresher goroutines only, one at a time)
}

// Option tweaks a Client.
type Option func(*Client)

// WithClock sets the clock driving backoff, the failure window and TLE
// refresh (default clock.Real).
func WithClock(c clock.Clock) Option { return func(cl *Client) { cl.clk = c } }

// WithPublisher shares a bus.Publisher (a Fleet shares one across its
// clients). Without it Run makes one and closes it on return.
func WithPublisher(p *bus.Publisher) Option { return func(cl *Client) { cl.pub = p } }

// WithOutput replaces the bus publishing stage: frames are handed to ch
// with a non-blocking send (dropped and counted when ch is full). The
// caller owns ch; Run never closes it.
func WithOutput(ch chan<- schemas.Frame) Option { return func(cl *Client) { cl.out = ch } }

// WithStateHook calls f synchronously, in order, on every transition.
func WithStateHook(f func(schemas.SessionState)) Option { return func(cl *Client) { cl.onState = f } }

// WithHTTPClient sets the HTTP client of the TLE refresh (default
// NewTLEHTTPClient: 3 s connect, 15 s overall).
func WithHTTPClient(h *http.Client) Option { return func(cl *Client) { cl.fetcher.HTTP = h } }

// New makes a client for one station. js provides the KV buckets and the
// ingest stream; it may be nil when WithOutput is given (tests, tools).
func New(js jetstream.JetStream, log *slog.Logger, cfg Config, opts ...Option) (*Client, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Client{cfg: cfg, js: js, log: log.With("station", cfg.Station), clk: clock.Real,
		fetcher: &TLEFetcher{Base: cfg.APIBase}}
	for _, o := range opts {
		o(c)
	}
	c.fetcher.Clock = c.clk
	if js == nil && c.out == nil {
		return nil, fmt.Errorf("%w: station %s: no bus and no output channel", ErrConfig, cfg.Station)
	}
	return c, nil
}

// Config returns the client's configuration with defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// State returns the latest published state (zero before Run).
func (c *Client) State() schemas.SessionState {
	if s := c.state.Load(); s != nil {
		return *s
	}
	return schemas.SessionState{}
}

// TLE returns the element set frames currently carry (nil before the
// first successful refresh).
func (c *Client) TLE() *schemas.Tle { return c.tle.Load() }

// Stats are the client's counters.
type Stats struct {
	FramesRead      uint64 // complete frames read from the station (control frames excluded)
	FramesForwarded uint64 // handed to the publishing stage
	FramesDropped   uint64 // dropped because the hand-off was full
	FramesInvalid   uint64 // bad mf1 header, dropped
	Sessions        uint64 // successful connections
	MidFrame        bool   // a frame is partially read right now
}

// Stats returns the counters; safe at any time.
func (c *Client) Stats() Stats {
	return Stats{FramesRead: c.stats.read.Load(), FramesForwarded: c.stats.forwarded.Load(),
		FramesDropped: c.stats.dropped.Load(), FramesInvalid: c.stats.invalid.Load(),
		Sessions: c.stats.sessions.Load(), MidFrame: c.midFrame.Load()}
}

// Run keeps the station's session up until ctx ends, then finishes the
// frame being read, says GOODBYE, closes, drains the publishing stage and
// publishes Stopped; it returns nil. It returns an ErrFailed error when
// reconnection failed for Config.FailAfter (state Failed).
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	if c.js != nil {
		var err error
		if c.sessionsKV, err = c.js.KeyValue(ctx, schemas.BucketSessions); err != nil {
			return fmt.Errorf("gsclient: %s: %w", schemas.BucketSessions, err)
		}
		if c.sourcesKV, err = c.js.KeyValue(ctx, schemas.BucketSources); err != nil {
			return fmt.Errorf("gsclient: %s: %w", schemas.BucketSources, err)
		}
	}
	c.registered = false

	// The hand-off and its publishing stage. Publishing outlives ctx by the
	// shutdown deadline so the last frames are still acked.
	out := c.out
	var fwdDone chan struct{}
	var handoff chan schemas.Frame
	pubCtx, pubCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer pubCancel()
	ownPub := false
	if out == nil {
		if c.pub == nil {
			c.pub = bus.NewPublisher(c.js, 256, c.log)
			ownPub = true
		}
		handoff = make(chan schemas.Frame, c.cfg.QueueSize)
		out = handoff
		fwd := newForwarder(&c.cfg, handoff, c.pub, time.Now().UnixNano(), c.log)
		fwdDone = make(chan struct{})
		go func() { defer close(fwdDone); fwd.run(pubCtx) }()
	}

	// One shutdown budget from the moment ctx ends: finishing the frame in
	// flight, the GOODBYE, draining the hand-off and the last acks all
	// share it, so Run returns within about ShutdownTimeout of cancellation.
	var stopAt atomic.Int64
	unwatch := context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })
	err := c.loop(ctx, out)
	unwatch()
	budgetEnd := time.Now().Add(c.cfg.ShutdownTimeout)
	if at := stopAt.Load(); at != 0 {
		budgetEnd = time.Unix(0, at).Add(c.cfg.ShutdownTimeout)
	}
	left := max(time.Until(budgetEnd), 100*time.Millisecond)

	// Drain: the read loop has stopped, so closing the hand-off is safe.
	deadline := time.NewTimer(left)
	defer deadline.Stop()
	if handoff != nil {
		close(handoff)
		select {
		case <-fwdDone:
		case <-deadline.C:
			c.log.Warn("publishing stage did not drain before the shutdown deadline")
			pubCancel()
			<-fwdDone
		}
		if ownPub {
			cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), budgetEnd.Add(100*time.Millisecond))
			if cerr := c.pub.Close(cctx); cerr != nil {
				c.log.Warn("publisher close", "err", cerr)
			}
			cancel()
			c.pub = nil
		}
	}
	if err != nil {
		return err // Failed was already published
	}
	c.publish(schemas.SessionState{Phase: schemas.PhaseStopped})
	return nil
}

// loop is the state machine. It returns nil when ctx ended and an
// ErrFailed error when the failure window passed.
func (c *Client) loop(ctx context.Context, out chan<- schemas.Frame) error {
	var (
		failures int           // consecutive failed dials and unhealthy sessions
		down     time.Duration // time spent failing since the last healthy session
		since    = c.clk.Now() // start of the current failing stretch
		lastErr  error
	)
	for {
		c.publish(schemas.SessionState{Phase: schemas.PhaseConnecting, Attempt: uint32(failures)})
		conn, err := (&net.Dialer{Timeout: c.cfg.DialTimeout}).DialContext(ctx, "tcp", c.cfg.Addr)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err == nil {
			down += c.clk.Now().Sub(since)
			healthy, stopped, serr := c.serve(ctx, conn.(*net.TCPConn), out)
			if stopped {
				return nil
			}
			if healthy {
				failures, down = 0, 0
			}
			since = c.clk.Now()
			err = serr
			c.log.Warn("station connection lost", "err", err)
		} else {
			c.log.Warn("station dial failed", "attempt", failures, "err", err)
		}
		lastErr = err
		failures++
		if elapsed := down + c.clk.Now().Sub(since); elapsed >= c.cfg.FailAfter {
			reason := fmt.Sprintf("reconnection failed for %v: %v", elapsed.Round(time.Second), lastErr)
			c.publish(schemas.SessionState{Phase: schemas.PhaseFailed, Reason: reason})
			return fmt.Errorf("%w: %s: %s", ErrFailed, c.cfg.Station, reason)
		}
		delay := c.cfg.backoff(failures)
		if j := c.cfg.ReconnectJitter; j > 0 {
			delay -= time.Duration(rand.Float64() * j * float64(delay))
		}
		c.publish(schemas.SessionState{Phase: schemas.PhaseReconnecting, Attempt: uint32(failures),
			NextRetryMs: c.clk.Now().Add(delay).UnixMilli()})
		if clock.Sleep(ctx, c.clk, delay) != nil {
			return nil
		}
	}
}

// publish records a transition: the atomic snapshot, the hook and the KV
// entry, synchronously and in order, so a KV watcher sees every one.
func (c *Client) publish(s schemas.SessionState) {
	now := c.clk.Now()
	s.StationID, s.Addr, s.Origin, s.UpdatedAtMs = c.cfg.Station, c.cfg.Addr, Origin, now.UnixMilli()
	if s.Phase == schemas.PhaseConnected {
		s.SinceMs = now.UnixMilli()
	}
	c.state.Store(&s)
	transitions.WithLabelValues(c.cfg.Station, string(s.Phase)).Inc()
	switch s.Phase {
	case schemas.PhaseConnecting:
		c.log.Info("session state", "state", s.Phase, "attempt", s.Attempt, "addr", s.Addr)
	case schemas.PhaseReconnecting:
		c.log.Info("session state", "state", s.Phase, "attempt", s.Attempt, "retry_in", time.Duration(s.NextRetryMs-s.UpdatedAtMs)*time.Millisecond)
	case schemas.PhaseFailed:
		c.log.Error("session state", "state", s.Phase, "reason", s.Reason)
	default:
		c.log.Info("session state", "state", s.Phase)
	}
	if c.onState != nil {
		c.onState(s)
	}
	if c.sessionsKV != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := bus.KVPut(ctx, c.sessionsKV, schemas.KVKey(c.cfg.Station), s); err != nil {
			c.log.Warn("session state not stored", "state", s.Phase, "err", err)
		}
	}
}

// register puts the station in the router's source registry, once per Run.
func (c *Client) register() {
	if c.sourcesKV == nil || c.registered {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	src := schemas.Source{SourceID: c.cfg.Station, Kind: schemas.KindLiveUplink, StationID: c.cfg.Station,
		RegisteredAtMs: time.Now().UnixMilli()}
	if _, err := bus.KVPut(ctx, c.sourcesKV, schemas.KVKey(c.cfg.Station), src); err != nil {
		c.log.Warn("source not registered", "err", err)
		return
	}
	c.registered = true
}

// refreshTLE fetches the TLE at once unless the last successful fetch is
// younger than TLERefresh, then every TLERefresh after each attempt, until
// ctx ends. A failed or interrupted fetch is therefore retried by the next
// session right away, not TLERefresh later.
func (c *Client) refreshTLE(ctx context.Context) {
	var next time.Time // zero: now
	if !c.lastTLE.IsZero() {
		next = c.lastTLE.Add(c.cfg.TLERefresh)
	}
	for {
		if !next.IsZero() {
			if clock.Sleep(ctx, c.clk, next.Sub(c.clk.Now())) != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		attempt := c.clk.Now()
		next = attempt.Add(c.cfg.TLERefresh)
		tle, err := c.fetcher.Fetch(ctx, c.cfg.NoradID)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("TLE refresh failed; frames keep the previous element set", "norad_id", c.cfg.NoradID, "err", err)
			}
			continue
		}
		c.lastTLE = attempt
		c.tle.Store(tle)
		c.log.Info("TLE refreshed", "norad_id", tle.NoradID, "epoch", tle.Epoch)
	}
}
