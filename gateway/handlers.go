package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// HandlersConfig configures the downstream handlers.
type HandlersConfig struct {
	Count int // handlers, each its own durable consumer "handler-<i>"
	// Work is called for every batch a handler receives (nil: count only).
	// A slow Work makes that handler lag; the others and ingestion do not
	// notice.
	Work func(ctx context.Context, handler int, b *schemas.FrameBatch)
	// LagWarn is the backlog (messages) above which a growing lag is
	// logged; default 1,000.
	LagWarn uint64
	Logger  *slog.Logger
}

// Handlers are the course's downstream handlers in JetStream terms: each
// is its own durable consumer of TLM_INGEST and receives every frame; a
// slow one falls behind alone (its backlog waits in the stream) and is
// reported by the lag monitor, while the gateway keeps ingesting.
type Handlers struct {
	cfg    HandlersConfig
	bus    *bus.Bus
	log    *slog.Logger
	frames []atomic.Uint64
}

// NewHandlers returns cfg.Count handlers consuming from b.
func NewHandlers(b *bus.Bus, cfg HandlersConfig) *Handlers {
	if cfg.LagWarn == 0 {
		cfg.LagWarn = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handlers{cfg: cfg, bus: b, log: cfg.Logger, frames: make([]atomic.Uint64, cfg.Count)}
}

// Frames returns how many frames handler i has received.
func (h *Handlers) Frames(i int) uint64 { return h.frames[i].Load() }

// Name is handler i's durable consumer name.
func Name(i int) string { return "handler-" + strconv.Itoa(i) }

// Run consumes until ctx ends.
func (h *Handlers) Run(ctx context.Context) error {
	if h.cfg.Count == 0 {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, h.cfg.Count)
	cons := make([]jetstream.Consumer, h.cfg.Count)
	for i := range h.cfg.Count {
		c, err := bus.EnsureConsumer(ctx, h.bus.JS, schemas.StreamIngest, jetstream.ConsumerConfig{
			Durable: Name(i), Description: "downstream handler " + strconv.Itoa(i) + ": sees every ingested frame",
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024, AckWait: 30 * time.Second,
			DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			if ctx.Err() != nil {
				break // asked to stop while starting
			}
			return fmt.Errorf("gateway: handler %d: %w", i, err)
		}
		cons[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- bus.Consume(ctx, c, Name(i), func(ctx context.Context, _ jetstream.Msg, b *schemas.FrameBatch) error {
				if h.cfg.Work != nil {
					h.cfg.Work(ctx, i, b)
				}
				h.frames[i].Add(uint64(len(b.Frames)))
				handlerFrames.WithLabelValues(Name(i)).Add(float64(len(b.Frames)))
				return nil
			}, bus.ConsumeOptions{Logger: h.log, PullMaxMessages: 64})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ctx.Err() == nil {
			h.monitor(ctx, cons)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// monitor reports each handler's backlog every second.
func (h *Handlers) monitor(ctx context.Context, cons []jetstream.Consumer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := make([]uint64, len(cons))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, c := range cons {
			info, err := c.Info(ctx)
			if err != nil {
				continue
			}
			lag := info.NumPending + uint64(info.NumAckPending)
			handlerLag.WithLabelValues(Name(i)).Set(float64(lag))
			if lag > h.cfg.LagWarn && lag > last[i] {
				h.log.Warn("downstream handler falling behind", "handler", Name(i), "lag", lag)
			}
			last[i] = lag
		}
	}
}
