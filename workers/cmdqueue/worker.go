package cmdqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue/queue"
)

// ErrAlreadyRun is returned by Run on a Worker that already ran: create a
// new Worker to restart.
var ErrAlreadyRun = errors.New("cmdqueue: worker already ran")

// Config configures a Worker. The zero value works.
type Config struct {
	// Capacity of the priority queue (default 1024). It is also the CMD
	// consumer's MaxAckPending, so JetStream never hands the worker more
	// commands than the queue holds: a full queue is backpressure (commands
	// wait in the stream), never loss.
	Capacity int
	// Durable is the CMD consumer's durable name (default "cmdqueue").
	// Instances sharing it compete for commands; the dispatch order is then
	// per instance.
	Durable string
	// AckWait of the CMD consumer (default 30 s). Held commands are kept
	// alive with InProgress every AckWait/3; after a crash their
	// redelivery comes within AckWait, inside CMD_DISPATCH's 2-minute
	// duplicate window, so a command stored on cmd.dispatch but not acked
	// is recognised (same Nats-Msg-Id) and not dispatched again. Keep it
	// well under that window.
	AckWait time.Duration
	// PublishWindow bounds dispatch publishes awaiting their ack (default 256).
	PublishWindow int
	// RecentIDs is how many dispatched ids the worker remembers to refuse a
	// redelivered command in-process (default 65,536).
	RecentIDs int
	// StatsInterval is how often KV meridian_stats key "cmdqueue" is
	// rewritten (default 1 s).
	StatsInterval time.Duration
	// DrainTimeout bounds the shutdown drain (default 5 s); commands not
	// dispatched by then are naked and redelivered to the next instance.
	DrainTimeout time.Duration
	// Hold, when non-nil and held, stops the dispatcher (see Gate).
	Hold   *Gate
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Capacity <= 0 {
		c.Capacity = queue.DefaultCapacity
	}
	if c.Durable == "" {
		c.Durable = "cmdqueue"
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.PublishWindow <= 0 {
		c.PublishWindow = 256
	}
	if c.RecentIDs <= 0 {
		c.RecentIDs = 1 << 16
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// entry is a command the worker holds: queued or being dispatched, its
// submit message not yet acked.
type entry struct {
	cmd      schemas.Command
	msg      jetstream.Msg // latest delivery of the submit message; guarded by Worker.mu
	seq      uint64        // the submit message's stream sequence
	received time.Time
}

// Worker takes commands from cmd.submit.>, queues them by priority and
// dispatches them to cmd.dispatch.<station>. See the package doc.
type Worker struct {
	nc  *nats.Conn
	cfg Config
	log *slog.Logger
	q   *queue.Queue[*entry]

	mu     sync.Mutex
	held   map[string]*entry // by command id
	recent *recentSet

	rejected   atomic.Uint64
	duplicates atomic.Uint64
	stored     atomic.Uint64
	failed     atomic.Uint64
	ran        atomic.Bool
	started    chan struct{}
}

// New returns a Worker that uses nc (give it its own connection, e.g.
// bus.Connect("cmdqueue")). Run starts it.
func New(nc *nats.Conn, cfg Config) *Worker {
	cfg.defaults()
	return &Worker{nc: nc, cfg: cfg, log: cfg.Logger.With("component", "cmdqueue"),
		q: queue.New[*entry](cfg.Capacity), held: map[string]*entry{}, recent: newRecentSet(cfg.RecentIDs),
		started: make(chan struct{})}
}

// Started is closed once Run consumes commands (its consumer and KV bucket
// exist).
func (w *Worker) Started() <-chan struct{} { return w.started }

// Stats is a snapshot of the worker's counters, as written to KV.
func (w *Worker) Stats() schemas.CmdQueueStats {
	m := w.q.Metrics()
	return schemas.CmdQueueStats{
		CommandsPushed:     m.CommandsPushed(),
		CommandsDispatched: m.CommandsDispatched(),
		SafeModeCount:      m.SafeModeCount(),
		Depth:              m.Depth(),
		CommandsRejected:   w.rejected.Load(),
		UpdatedAtMs:        time.Now().UnixMilli(),
	}
}

// Counters beyond the contract's stats, for tests and the demo.
type Counters struct {
	Stored     uint64 // dispatches newly stored on CMD_DISPATCH
	Duplicates uint64 // submissions not dispatched again: held, recently dispatched, or already on CMD_DISPATCH
	Failed     uint64 // dispatch publishes that failed (the command was naked for redelivery)
	Rejected   uint64 // invalid submissions terminated
}

// Counters returns the worker's counters.
func (w *Worker) Counters() Counters {
	return Counters{Stored: w.stored.Load(), Duplicates: w.duplicates.Load(), Failed: w.failed.Load(), Rejected: w.rejected.Load()}
}

// Run consumes, queues and dispatches until ctx ends, then shuts down:
// it stops taking commands, lets the dispatcher drain the queue (unless
// the Gate is held) for up to DrainTimeout, naks what is left so the next
// instance gets it at once, waits for in-flight dispatch acks, writes the
// final stats and returns nil (also when ctx ends while it is starting).
// A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	if err := w.run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // cancelled, possibly while starting: a clean stop
}

func (w *Worker) run(ctx context.Context) error {
	js, err := bus.NewJetStream(w.nc)
	if err != nil {
		return err
	}
	cons, err := bus.EnsureConsumer(ctx, js, schemas.StreamCmd, jetstream.ConsumerConfig{
		Durable:       w.cfg.Durable,
		Description:   "command queue: validates, orders by priority, dispatches to cmd.dispatch.<station>",
		FilterSubject: schemas.SubmitAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxAckPending: w.cfg.Capacity,
		MaxDeliver:    -1, // a telecommand is never dropped for being redelivered often
	})
	if err != nil {
		return fmt.Errorf("cmdqueue: %w", err)
	}
	kv, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return fmt.Errorf("cmdqueue: KV %s: %w", schemas.BucketStats, err)
	}
	pub := bus.NewPublisher(js, w.cfg.PublishWindow, w.log)

	// dctx lives past ctx: the dispatcher drains after ctx ends, until
	// the drain deadline cancels it.
	dctx, dcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer dcancel()
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		w.dispatch(ctx, dctx, pub)
	}()
	bgctx, bgcancel := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { w.keepAlive(bgctx) })
	bg.Go(func() { w.publishStats(bgctx, kv) })

	cc, err := cons.Consume(func(msg jetstream.Msg) { w.receive(dctx, msg) },
		jetstream.PullMaxMessages(min(w.cfg.Capacity, 256)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.log.Warn("consume error", "err", err)
		}))
	if err != nil {
		w.q.Shutdown()
		dcancel()
		<-dispatched
		_ = pub.Close(context.Background())
		bgcancel()
		bg.Wait()
		return fmt.Errorf("cmdqueue: consume: %w", err)
	}
	close(w.started)
	w.log.Info("command queue started", "capacity", w.cfg.Capacity, "durable", w.cfg.Durable, "held", w.cfg.Hold.Held())
	<-ctx.Done()

	// The drain deadline cancels dctx: pushes and pops still waiting give up.
	deadline := time.AfterFunc(w.cfg.DrainTimeout, dcancel)
	defer deadline.Stop()
	// 1. Stop taking commands; those already buffered still reach the queue.
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-dctx.Done():
		cc.Stop()
		<-cc.Closed()
	}
	// 2. Drain the queue through the dispatcher (it stops at once if held).
	w.q.Shutdown()
	select {
	case <-dispatched:
	case <-dctx.Done():
		w.log.Warn("drain deadline passed; undispatched commands go back to the stream")
		<-dispatched
	}
	// 3. Hand what is left back to JetStream for the next instance.
	left := w.q.TakeAll()
	for _, it := range left {
		w.release(it.Value)
	}
	// 4. Wait for in-flight dispatches; their callbacks ack the submits.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), w.cfg.DrainTimeout)
	if err := pub.Close(closeCtx); err != nil {
		w.log.Warn("dispatch acks outstanding at shutdown; those commands will be redelivered", "err", err)
	}
	closeCancel()
	bgcancel()
	bg.Wait()
	w.putStats(kv)
	w.log.Info("command queue stopped", "returned_to_stream", len(left), "stats", w.Stats())
	return nil
}

// receive handles one submit message (consume callbacks run one at a time).
func (w *Worker) receive(ctx context.Context, msg jetstream.Msg) {
	cmd, err := DecodeSubmit(msg.Subject(), msg.Data())
	if err != nil {
		w.rejected.Add(1)
		rejectedTotal.WithLabelValues(Reason(err)).Inc()
		w.log.Warn("command rejected", "subject", msg.Subject(), "reason", Reason(err), "err", err)
		if terr := msg.TermWithReason(truncate(err.Error(), 200)); terr != nil {
			w.log.Warn("terminating rejected command failed", "err", terr)
		}
		return
	}
	var seq uint64
	issued := cmd.IssuedAtNs
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
		if issued == 0 { // order an unstamped command by when the stream stored it
			issued = md.Timestamp.UnixNano()
		}
	}
	w.mu.Lock()
	if e, ok := w.held[cmd.ID]; ok {
		if e.seq == seq {
			e.msg = msg // a redelivery of a command we hold: ack this delivery when dispatched
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.duplicate(msg, cmd.ID, "held")
		return
	}
	if w.recent.has(cmd.ID) {
		w.mu.Unlock()
		w.duplicate(msg, cmd.ID, "recent")
		return
	}
	e := &entry{cmd: cmd, msg: msg, seq: seq, received: time.Now()}
	w.held[cmd.ID] = e
	w.mu.Unlock()
	it := queue.Item[*entry]{Value: e, Priority: cmd.EffectivePriority(), IssuedAt: issued, SafeMode: cmd.Kind == schemas.CmdSafeMode}
	if err := w.q.PushCtx(ctx, it); err != nil {
		w.release(e) // shutting down: back to the stream
		return
	}
	pushedTotal.Inc()
	depthGauge.Set(float64(w.q.Metrics().Depth()))
}

// duplicate acks a submission whose id was already dispatched or is held.
func (w *Worker) duplicate(msg jetstream.Msg, id, found string) {
	w.duplicates.Add(1)
	duplicatesTotal.WithLabelValues(found).Inc()
	w.log.Info("duplicate command not dispatched again", "id", id, "found", found)
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack of duplicate failed", "id", id, "err", err)
	}
}

// release forgets a held command and naks its submit so JetStream
// redelivers it at once.
func (w *Worker) release(e *entry) {
	w.mu.Lock()
	delete(w.held, e.cmd.ID)
	msg := e.msg
	w.mu.Unlock()
	if err := msg.Nak(); err != nil {
		w.log.Warn("nak failed; command will be redelivered after AckWait", "id", e.cmd.ID, "err", err)
	}
}

// dispatch pops commands in priority order and publishes each to
// cmd.dispatch.<station> with Nats-Msg-Id = its id, pipelined through the
// Publisher's window; settle acks the submit once the dispatch is stored.
// It returns when the queue is shut down and drained, when dctx ends, or
// when ctx ends while the gate is held.
func (w *Worker) dispatch(ctx, dctx context.Context, pub *bus.Publisher) {
	for {
		if err := w.cfg.Hold.Wait(ctx); err != nil {
			return // held at shutdown: leave the queue to the next instance
		}
		it, err := w.q.PopCtx(dctx)
		if err != nil {
			return
		}
		e := it.Value
		if it.SafeMode {
			safeModeTotal.Inc()
		}
		depthGauge.Set(float64(w.q.Metrics().Depth()))
		data, err := schemas.Marshal(&e.cmd)
		if err != nil { // a validated Command always encodes; be safe anyway
			w.log.Error("encoding command failed", "id", e.cmd.ID, "err", err)
			w.release(e)
			continue
		}
		msg := bus.NewMsg(schemas.DispatchSubject(e.cmd.StationID), data, e.cmd.ID)
		if err := pub.PublishAsync(dctx, msg, func(ack *jetstream.PubAck, err error) { w.settle(e, ack, err) }); err != nil {
			w.failed.Add(1)
			dispatchedTotal.WithLabelValues("failed").Inc()
			w.log.Warn("dispatch publish failed; command will be redelivered", "id", e.cmd.ID, "err", err)
			w.release(e)
		}
	}
}

// settle runs when a dispatch publish is acked (or failed for good).
func (w *Worker) settle(e *entry, ack *jetstream.PubAck, err error) {
	if err != nil {
		w.failed.Add(1)
		dispatchedTotal.WithLabelValues("failed").Inc()
		w.log.Warn("dispatch failed; command will be redelivered", "id", e.cmd.ID, "err", err)
		w.release(e)
		return
	}
	w.mu.Lock()
	delete(w.held, e.cmd.ID)
	w.recent.add(e.cmd.ID)
	msg := e.msg
	w.mu.Unlock()
	if ack.Duplicate {
		// Stored by an earlier delivery whose submit ack was lost (e.g. a
		// crash between the two): not dispatched twice.
		w.duplicates.Add(1)
		dispatchedTotal.WithLabelValues("duplicate").Inc()
		w.log.Info("dispatch already stored for this id; not dispatched again", "id", e.cmd.ID, "seq", ack.Sequence)
	} else {
		w.stored.Add(1)
		dispatchedTotal.WithLabelValues("stored").Inc()
	}
	waitSeconds.Observe(time.Since(e.received).Seconds())
	if err := msg.Ack(); err != nil {
		w.log.Warn("ack of dispatched command failed; its redelivery will be recognised", "id", e.cmd.ID, "err", err)
	}
}

// keepAlive extends AckWait of every held command, so a backlog (or a held
// gate) does not make JetStream redeliver what the worker is holding.
func (w *Worker) keepAlive(ctx context.Context) {
	t := time.NewTicker(max(w.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		w.mu.Lock()
		for _, e := range w.held {
			msgs = append(msgs, e.msg)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				w.log.Debug("in-progress failed", "err", err)
			}
		}
	}
}

func (w *Worker) publishStats(ctx context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.putStats(kv)
		}
	}
}

func (w *Worker) putStats(kv jetstream.KeyValue) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := w.Stats()
	depthGauge.Set(float64(s.Depth))
	if _, err := bus.KVPut(ctx, kv, schemas.KeyCmdQueueStats, &s); err != nil {
		w.log.Warn("writing stats failed", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
