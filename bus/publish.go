package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrPublisherClosed is returned by a Publisher after Close.
var ErrPublisherClosed = errors.New("bus: publisher closed")

// AckFunc receives the outcome of an async publish: the ack, or the error
// after retries were exhausted.
type AckFunc func(ack *jetstream.PubAck, err error)

// Publisher publishes to JetStream asynchronously with a bounded window of
// un-acked messages. PublishAsync blocks while the window is full — that
// is the backpressure a caller (a gateway session) passes on to its own
// input. Acks are awaited in publish order by one goroutine, which also
// retries messages whose publish timed out or found no stream responder
// (e.g. during a reconnect); the retry carries the same Nats-Msg-Id so
// JetStream stores it once.
type Publisher struct {
	js      jetstream.JetStream
	slots   chan struct{} // one token per in-flight message: the window
	pending chan inflight // same capacity as slots, so a send never blocks
	done    chan struct{}
	log     *slog.Logger

	mu     sync.RWMutex // guards closed against a concurrent PublishAsync
	closed bool

	// MaxRetries bounds re-publishes of one message (default 20, about 30 s
	// of backoff) before its AckFunc gets the error.
	maxRetries int
}

type inflight struct {
	fut   jetstream.PubAckFuture
	start time.Time
	done  AckFunc
}

// NewPublisher starts a Publisher with the given window (default 256).
func NewPublisher(js jetstream.JetStream, window int, log *slog.Logger) *Publisher {
	if window <= 0 {
		window = 256
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Publisher{js: js, slots: make(chan struct{}, window), pending: make(chan inflight, window), done: make(chan struct{}), log: log, maxRetries: 20}
	go p.reap()
	return p
}

// PublishAsync publishes msg and returns once it is in flight; done (may be
// nil) runs on the Publisher's goroutine when the ack arrives, in publish
// order. It blocks while the window is full, until ctx ends.
func (p *Publisher) PublishAsync(ctx context.Context, msg *nats.Msg, done AckFunc) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var fut jetstream.PubAckFuture
	for attempt := 0; ; attempt++ {
		var err error
		fut, err = p.js.PublishMsgAsync(msg)
		if err == nil {
			break
		}
		if !retriable(err) || attempt >= p.maxRetries {
			<-p.slots
			published.WithLabelValues("failed").Inc()
			return fmt.Errorf("bus: publish %s: %w", msg.Subject, err)
		}
		if err := sleepCtx(ctx, backoff(attempt)); err != nil {
			<-p.slots
			return err
		}
	}
	publishInflight.Inc()
	p.pending <- inflight{fut: fut, start: time.Now(), done: done}
	return nil
}

// Publish publishes msg and waits for its ack.
func (p *Publisher) Publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	type result struct {
		ack *jetstream.PubAck
		err error
	}
	ch := make(chan result, 1)
	if err := p.PublishAsync(ctx, msg, func(a *jetstream.PubAck, err error) { ch <- result{a, err} }); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.ack, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// InFlight returns the number of publishes awaiting their ack.
func (p *Publisher) InFlight() int { return len(p.pending) }

// Close stops accepting publishes and waits, until ctx ends, for every
// in-flight message's ack (and AckFunc) to complete.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.pending)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bus: publisher close: %d acks outstanding: %w", len(p.pending), ctx.Err())
	}
}

func (p *Publisher) reap() {
	defer close(p.done)
	for in := range p.pending {
		ack, err := p.await(in)
		publishInflight.Dec()
		<-p.slots
		if in.done != nil {
			in.done(ack, err)
		}
	}
}

// await waits for one future, re-publishing on transient failures.
func (p *Publisher) await(in inflight) (*jetstream.PubAck, error) {
	fut := in.fut
	for attempt := 0; ; attempt++ {
		select {
		case ack := <-fut.Ok():
			publishAckSeconds.Observe(time.Since(in.start).Seconds())
			if ack.Duplicate {
				published.WithLabelValues("duplicate").Inc()
			} else {
				published.WithLabelValues("ok").Inc()
			}
			return ack, nil
		case err := <-fut.Err():
			if !retriable(err) || attempt >= p.maxRetries {
				published.WithLabelValues("failed").Inc()
				p.log.Error("publish failed", "subject", fut.Msg().Subject, "attempts", attempt+1, "err", err)
				return nil, fmt.Errorf("bus: publish %s: %w", fut.Msg().Subject, err)
			}
			published.WithLabelValues("retried").Inc()
			time.Sleep(backoff(attempt))
			for {
				next, perr := p.js.PublishMsgAsync(fut.Msg())
				if perr == nil {
					fut = next
					break
				}
				if !retriable(perr) || attempt >= p.maxRetries {
					published.WithLabelValues("failed").Inc()
					return nil, fmt.Errorf("bus: republish %s: %w", fut.Msg().Subject, perr)
				}
				attempt++
				time.Sleep(backoff(attempt))
			}
		}
	}
}

// retriable reports errors after which the same message may be sent again
// safely (JetStream de-duplicates it by Nats-Msg-Id).
func retriable(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || IsTooManyRequests(err)
}

// IsTooManyRequests reports whether JetStream shed a publish because the
// stream's ingest queue was full (429, err_code 10167; the server holds at
// most 128 MiB or 100,000 messages a stream has not stored yet): the
// server's load shedding, to back off from and retry, not a failure. Under
// a flood with the CPU taken by other work, 48 gateway sessions' windows
// of 512-frame batches filled TLM_INGEST's queue, and the sessions failed.
func IsTooManyRequests(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.ErrorCode(server.JSStreamTooManyRequests)
}

func backoff(attempt int) time.Duration {
	d := 25 * time.Millisecond << min(attempt, 6)
	return min(d, 2*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StoredID identifies a message stored in a stream, for the Nats-Msg-Id of
// what a worker derives from it: the stream, the sequence and the time the
// message was stored, all the same on every redelivery. The sequence alone is
// not enough: a stream that lost its tail in a crash (a write that never
// reached the disk) gives the lost sequences to new messages, and the
// downstream stream's duplicate window would then drop their outputs as
// re-publications of the lost ones.
func StoredID(m jetstream.Msg) string {
	md, err := m.Metadata()
	if err != nil {
		return "0"
	}
	return md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10) + ":" + strconv.FormatInt(md.Timestamp.UnixNano(), 10)
}

// GroupID identifies a group of stored messages merged into one output, for
// that output's Nats-Msg-Id: one message's StoredID, or for several the
// first one's, their number and a hash of every member's identity. The
// same group redelivered gets the same id (JetStream drops the repeated
// output); a group merged differently after a redelivery — the same first
// message with other companions — gets another, so its new members'
// frames are not dropped as a duplicate of an output that never held them.
func GroupID(ms []jetstream.Msg) string {
	if len(ms) == 1 {
		return StoredID(ms[0])
	}
	h := fnv.New64a()
	for _, m := range ms {
		_, _ = io.WriteString(h, StoredID(m))
		_, _ = h.Write([]byte{0})
	}
	return StoredID(ms[0]) + "+" + strconv.Itoa(len(ms)-1) + "#" + strconv.FormatUint(h.Sum64(), 16)
}

// IsStreamFull reports whether a publish failed because a DiscardNew
// stream (or one of its subjects) is at its message limit: backpressure,
// to wait and retry, not a failure. JetStream reports it as a generic
// store error (err_code 10077) whose description is the store's sentinel.
func IsStreamFull(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	return api.Description == server.ErrMaxMsgs.Error() || api.Description == server.ErrMaxMsgsPerSubject.Error()
}
