// Package fanin is the pipeline's priority fan-in: it drains the router's
// output, emergency before routine, into the processor's bounded hand-off.
//
// Two durable consumers read TLM_ROUTED: "fanin-emergency"
// (tlm.routed.emergency.>) and "fanin-routine" (tlm.routed.routine.>), each
// drained by its own goroutine into its own lane of the hand-off
// (tlm.work.emergency, tlm.work). The emergency lane therefore never waits
// for a routine hand-off — not for its round trip, not while the routine
// lane is full — and the processor takes a waiting emergency batch first
// (course criterion 1). (One loop choosing between the two with Go's
// random select, or even an explicit emergency-first check, still made an
// emergency batch wait behind the routine hand-off in progress.)
//
// The hand-off is the stream TLM_WORK (subject tlm.work), a work queue of
// 64 messages with DiscardNew: when the processor is saturated a publish is
// refused, and the fan-in waits and retries — holding the routed message
// unacked — instead of dropping it. Backpressure therefore travels upstream:
// TLM_ROUTED fills, the router's consumer slows, and the backlog shows as
// consumer lag on TLM_INGEST (course criterion 3). A routed message is acked
// only after its hand-off is stored; a redelivered one is de-duplicated by
// JetStream (the hand-off's Nats-Msg-Id is bus.GroupID of the routed
// messages it merges).
package fanin

import (
	"context"
	"errors"
	"log/slog"
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
	// MaxMerge is how many routed batches of one priority that are already
	// waiting may be merged into one hand-off (default 64; 1 disables
	// merging). Stations send small batches; merging them is what lets the
	// pipeline move tens of thousands of frames per second through a
	// hand-off of 64 messages.
	MaxMerge int
	// MaxMergeFrames bounds the frames of a merged hand-off (default 1024: shorter
	// steps downstream, see the router's maxRouteBytes).
	MaxMergeFrames int
	// Observe, when set, sees each batch as it is handed on (tests).
	Observe func(priority schemas.Priority, data []byte)
	// EmergencyConn, when set, carries the emergency lane (its consumer and
	// its hand-offs), so they never queue behind routine traffic in one
	// socket; nil shares the main connection.
	EmergencyConn *nats.Conn
	Logger        *slog.Logger
}

// FanIn drains TLM_ROUTED into TLM_WORK, emergency first.
type FanIn struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	ejs       jetstream.JetStream // the emergency lane's
	log       *slog.Logger
	emergency atomic.Uint64
	routine   atomic.Uint64
	ready     chan struct{}

	emerg, rout chan jetstream.Msg
}

// New returns a fan-in using nc.
func New(nc *nats.Conn, cfg Config) *FanIn {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMerge <= 0 {
		cfg.MaxMerge = 64
	}
	if cfg.MaxMergeFrames <= 0 {
		cfg.MaxMergeFrames = 1024
	}
	return &FanIn{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "fanin"), ready: make(chan struct{}),
		// Buffered so that batches waiting in the client are there to be
		// merged; emergency still goes first at every hand-off.
		emerg: make(chan jetstream.Msg, 64), rout: make(chan jetstream.Msg, 64)}
}

// Ready is closed once both consumers run.
func (f *FanIn) Ready() <-chan struct{} { return f.ready }

// Handed returns how many emergency and routine routed batches were handed
// on (merged ones count each).
func (f *FanIn) Handed() (emergency, routine uint64) { return f.emergency.Load(), f.routine.Load() }

// Run drains until ctx ends; the batch being handed on is finished first.
func (f *FanIn) Run(ctx context.Context) error {
	js, err := bus.NewJetStream(f.nc)
	if err != nil {
		return err
	}
	f.js, f.ejs = js, js
	if f.cfg.EmergencyConn != nil {
		if f.ejs, err = bus.NewJetStream(f.cfg.EmergencyConn); err != nil {
			return err
		}
	}
	mk := func(js jetstream.JetStream, name, filter string, pending int) (jetstream.Consumer, error) {
		return bus.EnsureConsumer(ctx, js, schemas.StreamRouted, jetstream.ConsumerConfig{Durable: name,
			Description: "fan-in: " + filter, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: pending, AckWait: 30 * time.Second})
	}
	emergC, err := mk(f.ejs, "fanin-emergency", schemas.RoutedEmerg, 64)
	if err != nil {
		return quiet(ctx, err)
	}
	routineC, err := mk(js, "fanin-routine", schemas.RoutedRout, 128)
	if err != nil {
		return quiet(ctx, err)
	}
	emerg, routine := f.emerg, f.rout
	pctx, stopPull := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range []struct {
		c   jetstream.Consumer
		out chan jetstream.Msg
	}{{emergC, emerg}, {routineC, routine}} {
		// Bounded by size: the router merges routed batches of up to 256 KiB.
		it, err := p.c.Messages(jetstream.PullMaxBytes(16 << 20))
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
	var lanes sync.WaitGroup
	for _, l := range []struct {
		in <-chan jetstream.Msg
		p  schemas.Priority
	}{{emerg, schemas.PriorityEmergency}, {routine, schemas.PriorityRoutine}} {
		lanes.Add(1)
		go func() {
			defer lanes.Done()
			f.lane(ctx, l.in, l.p)
		}()
	}
	lanes.Wait()
	stopPull()
	wg.Wait()
	for _, ch := range []chan jetstream.Msg{emerg, routine} {
		for len(ch) > 0 {
			_ = (<-ch).Nak() // not handed on: redelivered at once to the next run
		}
	}
	return nil
}

// lane hands on one priority's routed batches until ctx ends.
func (f *FanIn) lane(ctx context.Context, in <-chan jetstream.Msg, p schemas.Priority) {
	var scratch []byte // merged frames
	for {
		select {
		case m := <-in:
			scratch = f.handOff(ctx, bus.TakeReady(in, []jetstream.Msg{m}, f.cfg.MaxMerge), p, scratch)
		case <-ctx.Done():
			return
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

// handOff merges routed batches of one priority into one hand-off (up to
// MaxMergeFrames frames; what does not fit goes in the next), publishes it
// to the bounded hand-off, waiting and retrying while it is full, and acks
// the routed messages once it is stored. A malformed routed batch is
// terminated and counted. On shutdown mid-wait the messages are nak'ed
// (redelivered later): never lost. frames is the lane's scratch buffer,
// returned for reuse.
func (f *FanIn) handOff(ctx context.Context, msgs []jetstream.Msg, p schemas.Priority, frames []byte) []byte {
	for len(msgs) > 0 {
		scratch := frames[:0]
		var station []byte
		n, taken, ok := 0, 0, msgs[:0:0]
		for _, m := range msgs {
			before := len(scratch)
			out, st, k, err := schemas.AppendBatchFrames(scratch, m.Data())
			if err != nil {
				bus.CountMalformed("fanin")
				f.log.Warn("fanin: malformed routed batch terminated", "subject", m.Subject(), "err", err)
				_ = m.TermWithReason("malformed")
				taken++
				continue
			}
			if len(ok) > 0 && n+k > f.cfg.MaxMergeFrames {
				scratch = out[:before]
				break
			}
			if len(ok) == 0 {
				station = st
			}
			scratch, n = out, n+k
			ok = append(ok, m)
			taken++
		}
		msgs, frames = msgs[taken:], scratch
		if len(ok) == 0 {
			continue
		}
		data := ok[0].Data() // a lone batch is handed on as it came
		if len(ok) > 1 {
			data = append(schemas.AppendFrameBatchHeaderBytes(make([]byte, 0, 16+len(scratch)), station, n), scratch...)
		}
		f.publish(ctx, ok, data, p)
	}
	return frames
}

// publish stores data in the hand-off and settles the routed messages it
// carries.
func (f *FanIn) publish(ctx context.Context, ms []jetstream.Msg, data []byte, p schemas.Priority) {
	// The hand-off's id is the identity of the routed messages it merges
	// (bus.GroupID): a redelivered hand-off is de-duplicated by JetStream,
	// and a differently merged one is not mistaken for it.
	id := "fanin:" + bus.GroupID(ms)
	subject, js := schemas.WorkSubject, f.js
	if p == schemas.PriorityEmergency {
		subject, js = schemas.WorkEmergency, f.ejs // its own lane: never behind routine work
	}
	msg := bus.NewMsg(subject, data, id)
	lastProgress := time.Now()
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			break
		}
		if bus.IsStreamFull(err) {
			fullTotal.Inc()
		} else {
			f.log.Warn("fanin: hand-off failed; retrying", "err", err)
		}
		if time.Since(lastProgress) > 10*time.Second {
			for _, m := range ms {
				_ = m.InProgress() // still ours: keep it from being redelivered while we wait
			}
			lastProgress = time.Now()
		}
		select {
		case <-ctx.Done():
			for _, m := range ms {
				_ = m.Nak()
			}
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Millisecond, 50*time.Millisecond)):
		}
	}
	if len(ms) == 1 {
		if err := ms[0].DoubleAck(context.WithoutCancel(ctx)); err != nil {
			f.log.Warn("fanin: ack failed; the batch may be handed on again (de-duplicated by id)", "err", err)
		}
	} else {
		// One round trip per merged batch would cost what merging saves; a
		// lost ack redelivers a batch whose frames the processor already
		// knows (de-duplicated by frame key).
		for _, m := range ms {
			_ = m.Ack()
		}
	}
	if p == schemas.PriorityEmergency {
		f.emergency.Add(uint64(len(ms)))
	} else {
		f.routine.Add(uint64(len(ms)))
	}
	handedTotal.WithLabelValues(string(p)).Add(float64(len(ms)))
	if f.cfg.Observe != nil {
		f.cfg.Observe(p, data)
	}
}

func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
