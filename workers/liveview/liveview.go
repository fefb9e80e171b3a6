// Package liveview is the course's dashboard consumer in NATS terms: a
// lossy, core-NATS subscriber to tlm.processed.> that follows the live
// stream without holding anything back. It has bounded pending limits;
// when it falls behind, NATS drops messages for it alone (the durable
// archive is unaffected), and the view logs how many it missed and
// carries on (course criterion 7). It keeps running totals and a rate for
// whoever displays them.
package liveview

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/schemas"
)

var missedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Name: "meridian_liveview_missed_total",
	Help: "Processed-frame messages the live view missed because it fell behind (lossy by design)."})

// Config configures the view. The zero value works.
type Config struct {
	PendingMsgs int // pending-message limit before NATS drops for this view; default 1,024
	// Slow, when set, is called per message (tests use it to fall behind).
	Slow   func()
	Logger *slog.Logger
}

// View follows processed frames.
type View struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	batches atomic.Uint64
	frames  atomic.Uint64
	missed  atomic.Uint64
	rate    atomic.Uint64 // frames per second over the last second
	ready   chan struct{}
}

// New returns a view on nc.
func New(nc *nats.Conn, cfg Config) *View {
	if cfg.PendingMsgs <= 0 {
		cfg.PendingMsgs = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &View{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "liveview"), ready: make(chan struct{})}
}

// Ready is closed once the subscription is active.
func (v *View) Ready() <-chan struct{} { return v.ready }

// Seen returns messages and frames seen, and messages missed.
func (v *View) Seen() (batches, frames, missed uint64) {
	return v.batches.Load(), v.frames.Load(), v.missed.Load()
}

// Rate is the frames per second seen over the last second.
func (v *View) Rate() uint64 { return v.rate.Load() }

// Run follows the stream until ctx ends.
func (v *View) Run(ctx context.Context) error {
	sub, err := v.nc.Subscribe(schemas.ProcessedAll, func(m *nats.Msg) {
		if v.cfg.Slow != nil {
			v.cfg.Slow()
		}
		var fb schemas.FrameBatch
		if err := schemas.Unmarshal(m.Data, &fb); err != nil {
			return // the archive counts malformed messages; a view only shows
		}
		v.batches.Add(1)
		v.frames.Add(uint64(len(fb.Frames)))
	})
	if err != nil {
		return fmt.Errorf("liveview: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := sub.SetPendingLimits(v.cfg.PendingMsgs, 64<<20); err != nil {
		return fmt.Errorf("liveview: %w", err)
	}
	if err := v.nc.Flush(); err != nil {
		return fmt.Errorf("liveview: %w", err)
	}
	close(v.ready)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastDropped int
	var lastFrames uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f := v.frames.Load()
		v.rate.Store(f - lastFrames)
		lastFrames = f
		d, err := sub.Dropped()
		if err != nil || d <= lastDropped {
			continue
		}
		n := d - lastDropped
		lastDropped = d
		v.missed.Add(uint64(n))
		missedTotal.Add(float64(n))
		v.log.Warn("live view fell behind; continuing from the newest frames", "missed_messages", n, "missed_total", v.missed.Load())
	}
}
