package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/schemas"
)

// ErrPermanent marks a handler error that redelivery cannot fix (the
// message is valid msgpack but its content is refused): the message is
// terminated instead of nak'ed. Wrap it: fmt.Errorf("%w: ...", bus.ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// RawHandler handles one JetStream message. Returning nil acks it (unless
// the handler already acked, nak'ed or terminated it); an error wrapping
// schemas.ErrMalformed or ErrPermanent terminates it; any other error
// naks it with a delay so it is redelivered.
type RawHandler func(ctx context.Context, msg jetstream.Msg) error

// Handler handles one decoded message of type T.
type Handler[T any] func(ctx context.Context, msg jetstream.Msg, v *T) error

// ConsumeOptions tune Consume. The zero value works.
type ConsumeOptions struct {
	// PullMaxMessages bounds the messages buffered in the client (default 256).
	PullMaxMessages int
	// PullMaxBytes, when set, bounds the buffered messages by size instead
	// (JetStream takes one or the other): for streams whose messages are
	// merged batches of up to a few MiB, a count alone would let a stage
	// hold hundreds of MiB.
	PullMaxBytes int
	// DrainTimeout bounds how long buffered messages may still be handled
	// after ctx ends (default 5 s); what is left is redelivered later.
	DrainTimeout time.Duration
	// NakDelay is the redelivery delay after a handler error (default 500 ms).
	NakDelay time.Duration
	// Concurrency lets up to this many handlers run at once (default 1:
	// one at a time, in delivery order). Handlers that wait on round trips
	// (publishing their outputs and waiting for the acks) overlap them;
	// messages are then handled, and settled, out of order.
	Concurrency int
	Logger      *slog.Logger
}

func (o *ConsumeOptions) defaults() {
	if o.PullMaxMessages <= 0 {
		o.PullMaxMessages = 256
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.NakDelay <= 0 {
		o.NakDelay = 500 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Consume decodes each message of cons into a T (validating it when T is a
// schemas.Validator) and passes it to h. See ConsumeRaw for the lifecycle.
func Consume[T any](ctx context.Context, cons jetstream.Consumer, name string, h Handler[T], o ConsumeOptions) error {
	return ConsumeRaw(ctx, cons, name, func(ctx context.Context, msg jetstream.Msg) error {
		var v T
		if err := schemas.Decode(msg.Data(), &v); err != nil {
			return err
		}
		return h(ctx, msg, &v)
	}, o)
}

// ConsumeRaw runs h for every message of cons until ctx ends, then stops
// pulling, lets buffered messages finish for up to DrainTimeout, and
// returns. Handlers run one at a time, in delivery order. The context
// handed to h is not cancelled by ctx (so a message being handled at
// shutdown can still publish its results); it ends only when the drain
// deadline passes.
func ConsumeRaw(ctx context.Context, cons jetstream.Consumer, name string, h RawHandler, o ConsumeOptions) error {
	o.defaults()
	log := o.Logger.With("consumer", name)
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	hist := handleSeconds.WithLabelValues(name)
	handle := func(msg jetstream.Msg) {
		start := time.Now()
		err := h(hctx, msg)
		hist.Observe(time.Since(start).Seconds())
		settle(msg, name, err, o, log)
	}
	cb := handle
	var running sync.WaitGroup
	if o.Concurrency > 1 {
		slots := make(chan struct{}, o.Concurrency)
		cb = func(msg jetstream.Msg) {
			slots <- struct{}{} // all busy: the client stops delivering (backpressure)
			running.Add(1)
			go func() {
				defer func() { <-slots; running.Done() }()
				handle(msg)
			}()
		}
	}
	cc, err := cons.Consume(cb, o.pullLimit(), errHandler(log))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", name, err)
	}
	<-ctx.Done()
	cc.Drain()
	drained := make(chan struct{})
	go func() { <-cc.Closed(); running.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(o.DrainTimeout):
		log.Warn("drain deadline passed; unhandled messages will be redelivered")
		cancelHandlers()
		cc.Stop()
		<-drained
	}
	return nil
}

func (o *ConsumeOptions) pullLimit() jetstream.PullConsumeOpt {
	if o.PullMaxBytes > 0 {
		return jetstream.PullMaxBytes(o.PullMaxBytes)
	}
	return jetstream.PullMaxMessages(o.PullMaxMessages)
}

func errHandler(log *slog.Logger) jetstream.PullConsumeOpt {
	return jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			log.Warn("consumer missed heartbeats; will resume", "err", err)
			return
		}
		log.Warn("consume error", "err", err)
	})
}

// BatchHandler handles messages that were waiting together. It returns one
// error per message, settled as ConsumeRaw settles a handler's result (nil
// acks); a nil slice acks them all, and a message a shorter slice has no
// result for is redelivered.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) []error

// TakeReady appends to batch the messages already waiting in msgs, up to
// max in all, without waiting for more: what a stage that handles messages
// in groups (a group commit, a merge) takes after the one it woke up for.
// It stops early if msgs is closed.
func TakeReady(msgs <-chan jetstream.Msg, batch []jetstream.Msg, max int) []jetstream.Msg {
	for len(batch) < max {
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// ConsumeBatch is ConsumeRaw for a stage whose cost is per round trip, not
// per message: each handler call gets the first message plus those already
// waiting behind it (up to maxBatch), so a stage fed many small messages
// can publish one output for many inputs and wait for one set of acks.
// Concurrency is the number of handler calls at once. Shutdown is
// ConsumeRaw's: stop pulling, handle what is buffered until DrainTimeout,
// leave the rest for redelivery.
func ConsumeBatch(ctx context.Context, cons jetstream.Consumer, name string, maxBatch int, h BatchHandler, o ConsumeOptions) error {
	o.defaults()
	maxBatch = max(maxBatch, 1)
	log := o.Logger.With("consumer", name)
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	hist := handleSeconds.WithLabelValues(name)
	// A message handed to in no longer counts against the pull's limits
	// (the client counts it until this callback returns), so when the pull
	// is bounded by bytes, in holds at most one group: otherwise up to
	// PullMaxMessages merged batches of a few MiB would wait here beyond
	// PullMaxBytes.
	buffered := o.PullMaxMessages
	if o.PullMaxBytes > 0 {
		buffered = maxBatch
	}
	in := make(chan jetstream.Msg, buffered)
	abandon := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-abandon: // past the drain deadline: left for redelivery
		}
	}, o.pullLimit(), errHandler(log))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", name, err)
	}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range in {
				batch := TakeReady(in, append(make([]jetstream.Msg, 0, maxBatch), m), maxBatch)
				start := time.Now()
				errs := h(hctx, batch)
				hist.Observe(time.Since(start).Seconds())
				for i, m := range batch {
					var err error
					switch {
					case i < len(errs):
						err = errs[i]
					case errs != nil: // a result missing is not a success
						err = fmt.Errorf("bus: %s handler returned %d results for %d messages", name, len(errs), len(batch))
					}
					settle(m, name, err, o, log)
				}
			}
		}()
	}
	<-ctx.Done()
	cc.Drain()
	drained := make(chan struct{})
	go func() { <-cc.Closed(); close(in); wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(o.DrainTimeout):
		log.Warn("drain deadline passed; unhandled messages will be redelivered")
		cancelHandlers()
		close(abandon)
		cc.Stop()
		<-drained
	}
	return nil
}

// settle acks, naks or terminates msg according to the handler's result.
func settle(msg jetstream.Msg, name string, err error, o ConsumeOptions, log *slog.Logger) {
	var aerr error
	switch {
	case err == nil:
		aerr = msg.Ack()
		consumed.WithLabelValues(name, "ack").Inc()
	case errors.Is(err, schemas.ErrMalformed):
		malformed.WithLabelValues(name).Inc()
		consumed.WithLabelValues(name, "term").Inc()
		log.Warn("malformed message terminated", "subject", msg.Subject(), "bytes", len(msg.Data()), "err", err)
		aerr = msg.TermWithReason(truncate(err.Error(), 200))
	case errors.Is(err, ErrPermanent):
		consumed.WithLabelValues(name, "term").Inc()
		log.Warn("message refused and terminated", "subject", msg.Subject(), "err", err)
		aerr = msg.TermWithReason(truncate(err.Error(), 200))
	default:
		consumed.WithLabelValues(name, "nak").Inc()
		log.Warn("handler failed; message will be redelivered", "subject", msg.Subject(), "err", err)
		aerr = msg.NakWithDelay(o.NakDelay)
	}
	if aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
		log.Warn("settling message failed; it will be redelivered after AckWait", "subject", msg.Subject(), "err", aerr)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
