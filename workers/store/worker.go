package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/query"
	"github.com/meridian-ops/meridian/store/wal"
)

// ErrAlreadyRun is returned by Run on a Worker that already ran.
var ErrAlreadyRun = errors.New("store: worker already ran")

// Config configures a Worker. Dir is required.
type Config struct {
	// Dir holds the engine (WAL, SSTables, manifest) and its lock.
	Dir string
	// Sources are the catalog providers with their priorities (default
	// catalog.DefaultSources). Updates from other sources are refused.
	Sources []query.SourceInfo
	// Durable is the TLE consumer's durable name (default "store").
	Durable string
	// MaxBatch bounds the updates committed together (default 1024).
	MaxBatch int
	// Sync is the WAL policy (default wal.SyncAlways: an update is acked
	// only once fsynced).
	Sync wal.SyncPolicy
	// HistoryRetention keeps versions this long for as_of reads
	// (default 24 h).
	HistoryRetention time.Duration
	// StatsInterval is how often KV meridian_stats "store" is rewritten
	// (default 1 s).
	StatsInterval time.Duration
	// MemtableSize overrides the LSM's memtable size (default 16 MiB).
	MemtableSize int64
	Logger       *slog.Logger
}

func (c *Config) defaults() {
	if c.Sources == nil {
		c.Sources = catalog.DefaultSources
	}
	if c.Durable == "" {
		c.Durable = "store"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.HistoryRetention == 0 {
		c.HistoryRetention = 24 * time.Hour
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = time.Second
	}
	if c.MemtableSize <= 0 {
		c.MemtableSize = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Worker is the store worker. See the package doc.
type Worker struct {
	nc  *nats.Conn
	cfg Config
	log *slog.Logger

	cat                                           *catalog.Catalog // set in Run before anything concurrent starts
	shared                                        atomic.Pointer[catalog.Catalog]
	objects                                       atomic.Int64
	gets, scans, snapshots, merges, puts, commits atomic.Uint64
	written, unchanged, refused                   atomic.Uint64

	ran     atomic.Bool
	started chan struct{}
	ready   sync.Once
}

// New returns a Worker on nc; Run starts it.
func New(nc *nats.Conn, cfg Config) *Worker {
	cfg.defaults()
	return &Worker{nc: nc, cfg: cfg, log: cfg.Logger.With("component", "store"), started: make(chan struct{})}
}

// Started is closed once the engine is open, the service answers and the
// ingest consumes.
func (w *Worker) Started() <-chan struct{} { return w.started }

// Catalog returns the open catalog (nil before Started).
func (w *Worker) Catalog() *catalog.Catalog { return w.shared.Load() }

// Run opens the engine, serves and ingests until ctx ends, then stops the
// ingest, commits and acks what it had taken, stops the service and closes
// the engine. It returns nil on a clean stop; an engine I/O error ends it
// with that error (updates not committed stay unacked and are redelivered).
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	if w.cfg.Dir == "" {
		return errors.New("store: Config.Dir is required")
	}
	lock, err := bus.LockDir(w.cfg.Dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer lock.Release()
	db, err := mvcc.Open(ctx, filepath.Join(w.cfg.Dir, "engine"), &mvcc.Options{
		LSM:              lsm.Options{Sync: w.cfg.Sync, MemtableSize: w.cfg.MemtableSize, Logger: w.log},
		HistoryRetention: w.cfg.HistoryRetention,
	})
	if err != nil {
		return fmt.Errorf("store: open engine: %w", err)
	}
	defer db.Close()
	rec := db.LSM().Recovery()
	w.log.Info("store: engine open", "dir", w.cfg.Dir, "wal_records_replayed", rec.WALRecords,
		"tables", rec.TablesOpened, "torn_bytes", rec.TornBytes, "took", rec.Duration)
	if w.cat, err = catalog.New(db, w.cfg.Sources); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	w.shared.Store(w.cat) // for Catalog and Stats, called from other goroutines
	if err := w.countObjects(ctx); err != nil {
		return fmt.Errorf("store: count objects: %w", err)
	}

	js, err := bus.NewJetStream(w.nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return fmt.Errorf("store: KV %s: %w", schemas.BucketStats, err)
	}
	svc, err := w.startService()
	if err != nil {
		return fmt.Errorf("store: micro service: %w", err)
	}
	defer svc.Stop()

	cons, err := bus.EnsureConsumer(ctx, js, schemas.StreamTLE, jetstream.ConsumerConfig{
		Durable:       w.cfg.Durable,
		Description:   "store worker: TLE updates into the OOR engine (acked once durable)",
		FilterSubject: schemas.TLEAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4 * w.cfg.MaxBatch,
		MaxDeliver:    -1, // an acked-by-JetStream update is never given up on
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}

	statsCtx, stopStats := context.WithCancel(context.WithoutCancel(ctx))
	statsDone := make(chan struct{})
	go func() { defer close(statsDone); w.statsLoop(statsCtx, kv) }()
	defer func() { stopStats(); <-statsDone }()

	return w.ingest(ctx, cons)
}

// drainTimeout bounds how long a clean stop waits for the client to hand
// over the messages it has buffered.
const drainTimeout = 5 * time.Second

// ingest runs the batching consume loop until ctx ends or the engine fails.
func (w *Worker) ingest(ctx context.Context, cons jetstream.Consumer) error {
	msgs := make(chan jetstream.Msg, 4*w.cfg.MaxBatch)
	stop := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stop:
			_ = m.Nak() // stopping: redelivered at once to the next run
		}
	}, jetstream.PullMaxMessages(2*w.cfg.MaxBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			w.log.Debug("store: consume", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("store: consume: %w", err)
	}
	w.ready.Do(func() { close(w.started) })
	w.log.Info("store: serving", "service", schemas.OORService, "sources", len(w.cfg.Sources))

	batch := make([]jetstream.Msg, 0, w.cfg.MaxBatch)
	var failure error
	for failure == nil {
		select {
		case <-ctx.Done():
		case m := <-msgs:
			batch = bus.TakeReady(msgs, append(batch[:0], m), w.cfg.MaxBatch)
			failure = w.commit(context.WithoutCancel(ctx), batch)
			continue
		}
		break
	}
	// Stop pulling, then commit what was already delivered so a clean stop
	// leaves nothing waiting for AckWait. Drain, not Stop: Stop drops the
	// messages the client has buffered but not yet handed over, and those
	// would come back only after AckWait; drained, they reach the callback,
	// which nak's them for immediate redelivery (or queues them for the
	// commits below).
	close(stop)
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(drainTimeout): // NATS unreachable: what is left comes back after AckWait
		cc.Stop()
		<-cc.Closed()
	}
	for failure == nil {
		batch = bus.TakeReady(msgs, batch[:0], w.cfg.MaxBatch)
		if len(batch) == 0 {
			break
		}
		failure = w.commit(context.Background(), batch)
	}
	if failure != nil {
		// The engine failed: what is still taken goes back at once rather
		// than after AckWait (the next worker may be on a healthy disk).
		for len(msgs) > 0 {
			_ = (<-msgs).Nak()
		}
	}
	return failure
}

// commit applies one batch as one transaction and settles its messages:
// refused ones terminated, the rest acked after the commit is durable or
// nak'ed if it failed. Only an engine failure is returned.
func (w *Worker) commit(ctx context.Context, msgs []jetstream.Msg) error {
	ups := make([]catalog.Update, 0, len(msgs))
	ok := msgs[:0:0]
	for _, m := range msgs {
		u, err := w.decode(m)
		if err != nil {
			bus.CountMalformed(w.cfg.Durable)
			w.refused.Add(1)
			w.log.Warn("store: update refused", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		ups = append(ups, u)
		ok = append(ok, m)
	}
	if len(ups) == 0 {
		return nil
	}
	start := time.Now()
	res, err := w.cat.Apply(ctx, ups)
	if err != nil {
		for _, m := range ok {
			_ = m.NakWithDelay(time.Second)
		}
		w.log.Error("store: commit failed; updates will be redelivered", "updates", len(ups), "err", err)
		return fmt.Errorf("store: commit %d updates: %w", len(ups), err)
	}
	commitSeconds.Observe(time.Since(start).Seconds())
	batchSize.Observe(float64(len(ups)))
	// Counted before acking: whoever sees the acks (an operator comparing
	// the durable's ack floor with StoreStats, a test) sees the counts too.
	w.commits.Add(1)
	opsTotal.WithLabelValues("commit").Inc()
	w.written.Add(uint64(res.Written))
	w.unchanged.Add(uint64(res.Unchanged))
	w.objects.Add(int64(res.New))
	objectsGauge.Set(float64(w.objects.Load()))
	updatesTotal.WithLabelValues("written").Add(float64(res.Written))
	updatesTotal.WithLabelValues("unchanged").Add(float64(res.Unchanged))
	for _, m := range ok {
		_ = m.Ack()
	}
	return nil
}

// decode turns one TLE message into a catalog update or explains why not.
func (w *Worker) decode(m jetstream.Msg) (catalog.Update, error) {
	var t schemas.Tle
	if err := schemas.Decode(m.Data(), &t); err != nil {
		updatesTotal.WithLabelValues("malformed").Inc()
		return catalog.Update{}, err
	}
	src := schemas.LastToken(m.Subject())
	if _, err := w.cat.Source(src); err != nil {
		updatesTotal.WithLabelValues("unknown_source").Inc()
		return catalog.Update{}, err
	}
	return catalog.Update{Source: src, Rec: ToRecord(&t), Name: t.Name}, nil
}

func (w *Worker) countObjects(ctx context.Context) error {
	snap, err := w.cat.Snapshot(ctx, 0)
	if err != nil {
		return err
	}
	defer snap.Close()
	n, err := snap.Count(ctx)
	w.objects.Store(int64(n))
	objectsGauge.Set(float64(n))
	return err
}

// Stats returns the worker's StoreStats snapshot.
func (w *Worker) Stats() schemas.StoreStats {
	st := schemas.StoreStats{
		Objects: uint64(max(0, w.objects.Load())), Gets: w.gets.Load(), Scans: w.scans.Load(),
		UpdatedAtMs: time.Now().UnixMilli(),
	}
	cat := w.shared.Load()
	if cat == nil {
		return st
	}
	ms := cat.DB().Stats()
	ls := cat.DB().LSM().Stats()
	st.Commits, st.Conflicts, st.Watermark = uint64(ms.Commits), uint64(ms.Conflicts), ms.Watermark
	st.WALBytes = uint64(ls.WALBytes)
	for _, n := range ls.Tables {
		st.SSTables = append(st.SSTables, n)
	}
	st.Extra = map[string]uint64{
		"updates_written": w.written.Load(), "updates_unchanged": w.unchanged.Load(), "updates_refused": w.refused.Load(),
		"snapshots": w.snapshots.Load(), "merges": w.merges.Load(), "puts": w.puts.Load(),
		"versions_collected": uint64(ms.GCDropped), "active_snapshots": uint64(ms.ActiveSnapshots),
		"flushes": uint64(ls.Flushes), "compactions": uint64(ls.Compactions), "last_commit_ts": ms.LastCommitTS,
		"block_cache_hits": uint64(ls.BlockCache.Hits), "block_cache_misses": uint64(ls.BlockCache.Misses),
	}
	return st
}

// statsLoop mirrors Stats to KV and the gauges every StatsInterval and
// once at the end.
func (w *Worker) statsLoop(ctx context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	publish := func(ctx context.Context) {
		st := w.Stats()
		walBytes.Set(float64(st.WALBytes))
		for i, n := range st.SSTables {
			sstables.WithLabelValues(strconv.Itoa(i)).Set(float64(n))
		}
		if last := st.Extra["last_commit_ts"]; last > st.Watermark {
			watermarkAge.Set(float64(last-st.Watermark) / 1e9)
		} else {
			watermarkAge.Set(0)
		}
		if _, err := bus.KVPut(ctx, kv, schemas.KeyStoreStats, &st); err != nil && ctx.Err() == nil {
			w.log.Debug("store: stats not written", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			publish(fctx)
			cancel()
			return
		case <-t.C:
			publish(ctx)
		}
	}
}

// asOf reads an optional as_of.
func asOf(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
