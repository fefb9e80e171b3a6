// Package fanin is the pipeline's priority fan-in: it drains the router's
// output, emergency before routine, into the processor's bounded hand-off.
//
// Two durable consumers read TLM_ROUTED: "fanin-emergency"
// (tlm.routed.emergency.>) and "fanin-routine" (tlm.routed.routine.>). Go's
// select picks at random among ready channels, so the order is made
// explicit: before handing on any routine batch, every emergency batch that
// is waiting goes first (course criterion 1).
//
// The hand-off is the stream TLM_WORK (subject tlm.work), a work queue of
// 64 messages with DiscardNew: when the processor is saturated a publish is
// refused, and the fan-in waits and retries — holding the routed message
// unacked — instead of dropping it. Backpressure therefore travels upstream:
// TLM_ROUTED fills, the router's consumer slows, and the backlog shows as
// consumer lag on TLM_INGEST (course criterion 3). A routed message is acked
// only after its hand-off is stored; a redelivered one is de-duplicated by
// JetStream (the hand-off's Nats-Msg-Id is the routed message's stream
// sequence).
package fanin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

var (
	handedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_fanin_batches_total",
		Help: "Routed batches handed to the processor, by priority."}, []string{"priority"})
	fullTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "meridian_fanin_handoff_full_total",
		Help: "Hand-off attempts refused because TLM_WORK was full (backpressure: the fan-in waits)."})
)

// Config configures the fan-in. The zero value works.
type Config struct {
	// Observe, when set, sees each batch as it is handed on (tests).
	Observe func(priority schemas.Priority, data []byte)
	Logger  *slog.Logger
}

// FanIn drains TLM_ROUTED into TLM_WORK, emergency first.
type FanIn struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	log       *slog.Logger
	emergency atomic.Uint64
	routine   atomic.Uint64
	ready     chan struct{}
}

// New returns a fan-in using nc.
func New(nc *nats.Conn, cfg Config) *FanIn {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &FanIn{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "fanin"), ready: make(chan struct{})}
}

// Ready is closed once both consumers run.
func (f *FanIn) Ready() <-chan struct{} { return f.ready }

// Handed returns how many emergency and routine batches were handed on.
func (f *FanIn) Handed() (emergency, routine uint64) { return f.emergency.Load(), f.routine.Load() }

// Run drains until ctx ends; the batch being handed on is finished first.
func (f *FanIn) Run(ctx context.Context) error {
	js, err := bus.NewJetStream(f.nc)
	if err != nil {
		return err
	}
	f.js = js
	mk := func(name, filter string, pending int) (jetstream.Consumer, error) {
		return bus.EnsureConsumer(ctx, js, schemas.StreamRouted, jetstream.ConsumerConfig{Durable: name,
			Description: "fan-in: " + filter, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: pending, AckWait: 30 * time.Second})
	}
	emergC, err := mk("fanin-emergency", schemas.RoutedEmerg, 64)
	if err != nil {
		return quiet(ctx, err)
	}
	routineC, err := mk("fanin-routine", schemas.RoutedRout, 16)
	if err != nil {
		return quiet(ctx, err)
	}
	emerg, routine := make(chan jetstream.Msg), make(chan jetstream.Msg)
	pctx, stopPull := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range []struct {
		c   jetstream.Consumer
		out chan jetstream.Msg
		n   int
	}{{emergC, emerg, 16}, {routineC, routine, 1}} {
		it, err := p.c.Messages(jetstream.PullMaxMessages(p.n))
		if err != nil {
			stopPull()
			wg.Wait()
			return quiet(ctx, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pull(pctx, it, p.out, f.log)
		}()
	}
	close(f.ready)
	defer func() { stopPull(); wg.Wait() }()
	for {
		// Emergency first, whenever one is waiting.
		select {
		case m := <-emerg:
			f.handOff(ctx, m, schemas.PriorityEmergency)
			continue
		default:
		}
		select {
		case m := <-emerg:
			f.handOff(ctx, m, schemas.PriorityEmergency)
		case m := <-routine:
			// An emergency batch may have become ready at the same moment;
			// the random select must not let this routine one pass it.
			for drained := false; !drained; {
				select {
				case e := <-emerg:
					f.handOff(ctx, e, schemas.PriorityEmergency)
				default:
					drained = true
				}
			}
			f.handOff(ctx, m, schemas.PriorityRoutine)
		case <-ctx.Done():
			return nil
		}
	}
}

// pull feeds a consumer's messages into out until ctx ends.
func pull(ctx context.Context, it jetstream.MessagesContext, out chan<- jetstream.Msg, log *slog.Logger) {
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return
			}
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				log.Warn("fanin: pull", "err", err)
			}
			continue
		}
		select {
		case out <- m:
		case <-ctx.Done():
			_ = m.Nak() // not handed on: let it be redelivered at once
			return
		}
	}
}

// handOff publishes one routed batch to the bounded hand-off, waiting and
// retrying while it is full, and acks the routed message once stored. On
// shutdown mid-wait the message is nak'ed (redelivered later): never lost.
func (f *FanIn) handOff(ctx context.Context, m jetstream.Msg, p schemas.Priority) {
	if err := schemas.Decode(m.Data(), new(schemas.FrameBatch)); err != nil {
		bus.CountMalformed("fanin")
		f.log.Warn("fanin: malformed routed batch terminated", "subject", m.Subject(), "err", err)
		_ = m.TermWithReason("malformed")
		return
	}
	id := "fanin:" + bus.StoredID(m)
	msg := bus.NewMsg(schemas.WorkSubject, m.Data(), id)
	lastProgress := time.Now()
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := f.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			break
		}
		if strings.Contains(err.Error(), "maximum messages exceeded") {
			fullTotal.Inc()
		} else {
			f.log.Warn("fanin: hand-off failed; retrying", "err", err)
		}
		if time.Since(lastProgress) > 10*time.Second {
			_ = m.InProgress() // still ours: keep it from being redelivered while we wait
			lastProgress = time.Now()
		}
		select {
		case <-ctx.Done():
			_ = m.Nak()
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Millisecond, 50*time.Millisecond)):
		}
	}
	if err := m.DoubleAck(context.WithoutCancel(ctx)); err != nil {
		f.log.Warn("fanin: ack failed; the batch may be handed on again (de-duplicated by id)", "err", err)
	}
	if p == schemas.PriorityEmergency {
		f.emergency.Add(1)
	} else {
		f.routine.Add(1)
	}
	handedTotal.WithLabelValues(string(p)).Inc()
	if f.cfg.Observe != nil {
		f.cfg.Observe(p, m.Data())
	}
}

func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
