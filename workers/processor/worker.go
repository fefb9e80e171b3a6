package processor

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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

var (
	framesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_processor_frames_total",
		Help: "Frames through the processor by outcome: processed, duplicate, invalid."}, []string{"outcome"})
	batchSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "meridian_processor_batch_seconds", Help: "Core time per batch (decode to encode).",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 14)})
	lockWaitSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "meridian_processor_core_wait_seconds", Help: "How long a batch waited for the core (another batch was being processed), by lane.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 16)}, []string{"lane"})
	publishSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "meridian_processor_publish_seconds", Help: "From a batch's outputs published to all acked.",
		Buckets: prometheus.ExponentialBuckets(100e-6, 2, 14)})
	// The series the hot path observes, looked up once.
	framesProcessed, framesDuplicate, framesInvalid = framesTotal.WithLabelValues("processed"),
		framesTotal.WithLabelValues("duplicate"), framesTotal.WithLabelValues("invalid")
	lockWait = map[bool]prometheus.Observer{ // by urgent
		true: lockWaitSeconds.WithLabelValues("emergency"), false: lockWaitSeconds.WithLabelValues("routine")}
)

// Config configures the processor worker. The zero value works.
type Config struct {
	Durable string        // consumer on TLM_WORK; default "processor"
	Core    CoreConfig    // batch and window sizes
	AckWait time.Duration // default 30 s
	// StatsInterval bounds how often PipelineStats is written to KV;
	// default 100 ms (always written on shutdown).
	StatsInterval time.Duration
	// EmergencyConn, when set, carries the emergency lane (its consumer and
	// its outputs), so they never queue behind routine traffic in one
	// socket; nil shares the main connection.
	EmergencyConn *nats.Conn
	Logger        *slog.Logger
}

// Stats are the processor's counters; readers never take a lock
// (criterion 5: atomics, not the processing path's state).
type Stats struct {
	Processed, Emergency, Duplicates, Invalid, Batches atomic.Uint64
}

// Worker is the processor stage.
type Worker struct {
	cfg   Config
	nc    *nats.Conn
	log   *slog.Logger
	core  *Core
	lock  priorityLock // guards core
	stats Stats
}

// New returns a worker using nc.
func New(nc *nats.Conn, cfg Config) *Worker {
	if cfg.Durable == "" {
		cfg.Durable = "processor"
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "processor"), core: NewCore(cfg.Core)}
}

// Stats returns the live counters.
func (w *Worker) Stats() *Stats { return &w.stats }

// Snapshot is the counters as the contract's PipelineStats.
func (w *Worker) Snapshot() schemas.PipelineStats {
	return schemas.PipelineStats{FramesProcessed: w.stats.Processed.Load(), EmergencyCount: w.stats.Emergency.Load(),
		DuplicatesDropped: w.stats.Duplicates.Load(), InvalidDropped: w.stats.Invalid.Load(), UpdatedAtMs: time.Now().UnixMilli()}
}

// Run consumes TLM_WORK until ctx ends, then drains.
func (w *Worker) Run(ctx context.Context) error {
	js, err := bus.NewJetStream(w.nc)
	if err != nil {
		return err
	}
	ejs := js
	if w.cfg.EmergencyConn != nil {
		if ejs, err = bus.NewJetStream(w.cfg.EmergencyConn); err != nil {
			return err
		}
	}
	lane := func(js jetstream.JetStream, durable, subject string) (jetstream.Consumer, error) {
		return bus.EnsureConsumer(ctx, js, schemas.StreamWork, jetstream.ConsumerConfig{
			Durable: durable, Description: "processor: dedup, order, publish to tlm.processed (" + subject + ")",
			FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.cfg.AckWait, MaxAckPending: 64, MaxDeliver: -1,
		})
	}
	cons, err := lane(js, w.cfg.Durable, schemas.WorkSubject)
	var emerg jetstream.Consumer
	if err == nil {
		emerg, err = lane(ejs, w.cfg.Durable+"-emergency", schemas.WorkEmergency)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	kv, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("processor: %w", err)
	}
	w.loadStats(ctx, kv)
	if n, err := w.seedWindow(ctx, js); err != nil {
		w.log.Warn("processor: could not seed the recent-key window; redeliveries after a crash may be processed again", "err", err)
	} else if n > 0 {
		w.log.Info("processor: recent-key window seeded from TLM_PROCESSED", "keys", n)
	}
	pub, epub := bus.NewPublisher(js, 64, w.log), bus.NewPublisher(ejs, 64, w.log)
	statsCtx, stopStats := context.WithCancel(context.WithoutCancel(ctx))
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); w.statsLoop(statsCtx, kv) }()

	// One consumer per lane; the core takes one batch at a time, and a
	// waiting emergency batch goes before a waiting routine one.
	lock := &w.lock
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, l := range []struct {
		c       jetstream.Consumer
		durable string
		urgent  bool
		pub     *bus.Publisher
	}{{cons, w.cfg.Durable, false, pub}, {emerg, w.cfg.Durable + "-emergency", true, epub}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keys []Key // the lane's scratch
			errs[i] = bus.ConsumeRaw(ctx, l.c, l.durable, func(hctx context.Context, m jetstream.Msg) error {
				var err error
				keys, err = w.handle(hctx, lock, l.urgent, l.pub, m, keys[:0])
				return err
			}, bus.ConsumeOptions{Logger: w.log, PullMaxBytes: 8 << 20}) // merged hand-offs are up to 1,024 frames; one batch passed on alone may be larger
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = pub.Close(cctx)
	_ = epub.Close(cctx)
	stopStats()
	<-statsDone
	return err
}

// SeedWindow is how far back the processor reads TLM_PROCESSED at start to
// remember recent frame keys.
const SeedWindow = 2 * time.Minute

// seedWindow remembers the keys of the frames processed in the last
// SeedWindow (up to the window's capacity). After a crash, batches that
// were acked out of the work-queue streams upstream can be redelivered
// with new message ids (JetStream rebuilds its duplicate window only from
// messages still stored); the keys seeded here catch them.
func (w *Worker) seedWindow(ctx context.Context, js jetstream.JetStream) (int, error) {
	st, err := js.Stream(ctx, schemas.StreamProcessed)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return 0, err
	}
	since := time.Now().Add(-SeedWindow)
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(10 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		m, err := oc.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break // caught up (or nothing in the window)
		}
		var fb schemas.FrameBatch
		if schemas.Unmarshal(m.Data(), &fb) == nil {
			for i := range fb.Frames {
				if w.core.win.Insert(Key{fb.Frames[i].SatelliteID, fb.Frames[i].Sequence}) {
					n++
				}
			}
		}
		if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= info.State.LastSeq {
			break
		}
	}
	return n, nil
}

// loadStats continues the counters from the last snapshot so the
// dashboard's totals survive a restart.
func (w *Worker) loadStats(ctx context.Context, kv jetstream.KeyValue) {
	var last schemas.PipelineStats
	if found, err := bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &last); found && err == nil {
		w.stats.Processed.Store(last.FramesProcessed)
		w.stats.Emergency.Store(last.EmergencyCount)
		w.stats.Duplicates.Store(last.DuplicatesDropped)
		w.stats.Invalid.Store(last.InvalidDropped)
	}
}

// handle processes one TLM_WORK message: outputs are published and acked
// before the input is (by ConsumeRaw on return). The core is held only to
// process and encode the batch, not while its outputs wait for their acks,
// so an emergency batch never waits a routine batch's round trip. If the
// outputs are not stored, the batch's keys (kept in keys, returned for
// reuse) are forgotten again and the input is redelivered.
func (w *Worker) handle(ctx context.Context, lock *priorityLock, urgent bool, pub *bus.Publisher, m jetstream.Msg, keys []Key) ([]Key, error) {
	waitStart := time.Now()
	lock.Lock(urgent)
	start := time.Now()
	lockWait[urgent].Observe(start.Sub(waitStart).Seconds())
	res, err := w.core.Process(m.Data())
	if err != nil {
		lock.Unlock()
		w.log.Warn("processor: malformed batch terminated", "subject", m.Subject(), "err", err)
		return keys, err // wraps schemas.ErrMalformed: counted and terminated by bus
	}
	outs := w.core.Encode()
	// The core's buffers are reused by the next batch and the publisher
	// keeps a message until its ack: give each output its own copy.
	seq := bus.StoredID(m)
	msgs := make([]*nats.Msg, len(outs))
	for i, o := range outs {
		src := string(o.Source)
		msgs[i] = bus.NewMsg(schemas.ProcessedSubject(src), append([]byte(nil), o.Data...), "proc:"+seq+":"+schemas.Token(src))
	}
	keys = w.core.AppendKeys(keys)
	w.core.Commit()
	lock.Unlock()
	batchSeconds.Observe(time.Since(start).Seconds())

	pubStart := time.Now()
	errc := make(chan error, len(msgs))
	for _, msg := range msgs {
		if err := pub.PublishAsync(ctx, msg, func(_ *jetstream.PubAck, err error) { errc <- err }); err != nil {
			errc <- err
		}
	}
	var failed error
	for range msgs {
		if err := <-errc; err != nil && failed == nil {
			failed = err
		}
	}
	publishSeconds.Observe(time.Since(pubStart).Seconds())
	if failed != nil {
		lock.Lock(urgent)
		w.core.Forget(keys)
		lock.Unlock()
		return keys, fmt.Errorf("processor: outputs not stored (the batch will be redelivered): %w", failed)
	}
	w.stats.Processed.Add(uint64(res.Out))
	w.stats.Emergency.Add(uint64(res.Emergency))
	w.stats.Duplicates.Add(uint64(res.Duplicates))
	w.stats.Invalid.Add(uint64(res.Invalid))
	w.stats.Batches.Add(1)
	framesProcessed.Add(float64(res.Out))
	framesDuplicate.Add(float64(res.Duplicates))
	framesInvalid.Add(float64(res.Invalid))
	return keys, nil
}

// statsLoop mirrors the counters to KV meridian_stats "pipeline" whenever
// they changed, at most every StatsInterval, and once more at the end.
func (w *Worker) statsLoop(ctx context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	var written uint64 = ^uint64(0)
	write := func(c context.Context) {
		b := w.stats.Batches.Load()
		if b == written {
			return
		}
		snap := w.Snapshot()
		err := bus.KVMerge(c, kv, schemas.KeyPipelineStats, func(p *schemas.PipelineStats) {
			p.FramesProcessed, p.EmergencyCount = snap.FramesProcessed, snap.EmergencyCount
			p.DuplicatesDropped, p.InvalidDropped, p.UpdatedAtMs = snap.DuplicatesDropped, snap.InvalidDropped, snap.UpdatedAtMs
		})
		if err != nil {
			// Not written (a write cut short by shutdown included): the
			// final write at shutdown must try again.
			if !errors.Is(err, context.Canceled) {
				w.log.Warn("processor: stats not written", "err", err)
			}
			return
		}
		written = b
	}
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			write(c)
			cancel()
			return
		case <-t.C:
			write(ctx)
		}
	}
}

// priorityLock is a mutex whose urgent waiters go before the others: the
// processor's emergency lane takes the core before a waiting routine batch.
type priorityLock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	busy    bool
	urgents int // urgent callers waiting
	waiting int // all callers waiting (for tests)
}

// Lock takes the lock; a non-urgent caller also waits while an urgent one
// is waiting.
func (l *priorityLock) Lock(urgent bool) {
	l.mu.Lock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
	}
	if urgent {
		l.urgents++
	}
	l.waiting++
	for l.busy || (!urgent && l.urgents > 0) {
		l.cond.Wait()
	}
	l.waiting--
	if urgent {
		l.urgents--
	}
	l.busy = true
	l.mu.Unlock()
}

// Unlock releases the lock.
func (l *priorityLock) Unlock() {
	l.mu.Lock()
	l.busy = false
	l.cond.Broadcast()
	l.mu.Unlock()
}
