// Package router is the first stage of the telemetry pipeline: it
// consumes raw batches from TLM_INGEST (and re-played ones from
// TLM_REPLAY), tags each frame's source kind, and routes it by priority to
// tlm.routed.emergency.<source> or tlm.routed.routine.<source>, where the
// fan-in drains emergency first.
//
// Sources. Only registered sources are routed. The registry is KV
// meridian_sources (the gateway and gs-client register their station on
// connect; operators add and remove sources through the micro service
// "router": router.sources.add / .remove / .list), watched, so a change
// takes effect at once in every router instance and survives restarts.
// Frames from an unregistered source are counted and kept aside on
// tlm.rejected.<source>, never dropped silently.
//
// Guarantees. An input is acked only after all its outputs are acked; each
// output carries a Nats-Msg-Id derived from the input's stream sequence,
// so a redelivered input does not duplicate anything downstream. Several
// router instances on the same durable consumer share the work.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
		Name: "meridian_router_frames_total",
		Help: "Frames through the router by outcome: emergency, routine (routed), rejected (unregistered source)."},
		[]string{"outcome"})
	sourcesGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_router_sources", Help: "Registered telemetry sources."})
)

// Config configures the router. The zero value works.
type Config struct {
	Durable       string // on TLM_INGEST; default "router"
	ReplayDurable string // on TLM_REPLAY; default "router-replay"
	StatsInterval time.Duration
	Logger        *slog.Logger
}

// Router routes ingested frames by priority.
type Router struct {
	cfg      Config
	nc       *nats.Conn
	log      *slog.Logger
	sources  atomic.Pointer[map[string]schemas.Source] // by KVKey(source_id); copy-on-write
	ingested atomic.Uint64
	routed   atomic.Uint64
	rejected atomic.Uint64
	ready    chan struct{}
	kv       jetstream.KeyValue // the registry, for misses the watch has not delivered yet
}

// New returns a router using nc.
func New(nc *nats.Conn, cfg Config) *Router {
	if cfg.Durable == "" {
		cfg.Durable = "router"
	}
	if cfg.ReplayDurable == "" {
		cfg.ReplayDurable = "router-replay"
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{cfg: cfg, nc: nc, log: cfg.Logger.With("worker", "router"), ready: make(chan struct{})}
	empty := map[string]schemas.Source{}
	r.sources.Store(&empty)
	return r
}

// Ready is closed once the registry is loaded and the consumers run.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Counts returns frames ingested, routed and rejected so far.
func (r *Router) Counts() (ingested, routed, rejected uint64) {
	return r.ingested.Load(), r.routed.Load(), r.rejected.Load()
}

// Registered reports whether source is in the registry.
func (r *Router) Registered(source string) bool {
	_, ok := (*r.sources.Load())[schemas.KVKey(source)]
	return ok
}

// Run routes until ctx ends, then drains.
func (r *Router) Run(ctx context.Context) error {
	err := r.run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

func (r *Router) run(ctx context.Context) error {
	js, err := bus.NewJetStream(r.nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, schemas.BucketSources)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	r.kv = kv
	watcher, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("router: watch sources: %w", err)
	}
	defer watcher.Stop()
	if err := r.loadInitial(ctx, watcher); err != nil {
		return err
	}
	svc, err := r.startService(kv)
	if err != nil {
		return err
	}
	defer svc.Stop()
	ingest, err := bus.EnsureConsumer(ctx, js, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: r.cfg.Durable,
		Description: "router: tag and route by priority", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256, AckWait: 30 * time.Second})
	if err != nil {
		return err
	}
	replay, err := bus.EnsureConsumer(ctx, js, schemas.StreamReplay, jetstream.ConsumerConfig{Durable: r.cfg.ReplayDurable,
		Description: "router: re-played frames", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256, AckWait: 30 * time.Second})
	if err != nil {
		return err
	}
	stats, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	pub := bus.NewPublisher(js, 256, r.log)
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(c)
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f() }()
	}
	run(func() error { r.watch(ctx, watcher); return nil })
	run(func() error { r.statsLoop(ctx, stats); return nil })
	run(func() error {
		return bus.ConsumeRaw(ctx, ingest, r.cfg.Durable, func(hctx context.Context, m jetstream.Msg) error {
			return r.route(hctx, pub, m, schemas.KindLiveUplink)
			// Eight at once: each waits a round trip for its outputs' acks,
			// which one-at-a-time made the router the pipeline's limit.
		}, bus.ConsumeOptions{Logger: r.log, PullMaxMessages: 64, Concurrency: 8})
	})
	run(func() error {
		return bus.ConsumeRaw(ctx, replay, r.cfg.ReplayDurable, func(hctx context.Context, m jetstream.Msg) error {
			return r.route(hctx, pub, m, schemas.KindArchivedReplay)
		}, bus.ConsumeOptions{Logger: r.log, PullMaxMessages: 64, Concurrency: 8})
	})
	close(r.ready)
	wg.Wait()
	close(errs)
	var first error
	for err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// loadInitial reads the registry's current values (until the watcher's
// end-of-initial-values marker).
func (r *Router) loadInitial(ctx context.Context, w jetstream.KeyWatcher) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("router: source watcher closed")
			}
			if e == nil {
				return nil
			}
			r.apply(e)
		}
	}
}

func (r *Router) watch(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				r.apply(e)
			}
		}
	}
}

// apply updates the copy-on-write registry from one KV entry.
func (r *Router) apply(e jetstream.KeyValueEntry) {
	old := *r.sources.Load()
	next := make(map[string]schemas.Source, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if e.Operation() == jetstream.KeyValuePut {
		var s schemas.Source
		if err := schemas.Decode(e.Value(), &s); err != nil {
			r.log.Warn("router: ignoring a malformed source registration", "key", e.Key(), "err", err)
			return
		}
		next[e.Key()] = s
	} else {
		delete(next, e.Key())
	}
	r.sources.Store(&next)
	sourcesGauge.Set(float64(len(next)))
}

// lookup reads one source from KV (a registry miss) and adds it to the
// cached registry when found.
func (r *Router) lookup(ctx context.Context, src string) (schemas.Source, bool) {
	var s schemas.Source
	if r.kv == nil {
		return s, false
	}
	e, err := r.kv.Get(ctx, schemas.KVKey(src))
	if err != nil {
		return s, false
	}
	r.apply(e)
	s, ok := (*r.sources.Load())[schemas.KVKey(src)]
	return s, ok
}

// out accumulates one output subject's frames.
type out struct {
	subject string
	batch   schemas.FrameBatch
}

// route splits one input batch by source and priority and publishes the
// parts; the input is acked (by ConsumeRaw) when this returns nil.
func (r *Router) route(ctx context.Context, pub *bus.Publisher, m jetstream.Msg, kind schemas.SourceKind) error {
	var in schemas.FrameBatch
	if err := schemas.Decode(m.Data(), &in); err != nil {
		return err // malformed: counted and terminated by bus
	}
	reg := *r.sources.Load()
	var outs []*out
	index := map[string]*out{}
	var nEmerg, nRoutine, nRejected uint64
	for i := range in.Frames {
		f := &in.Frames[i]
		src := f.SourceID
		if src == "" {
			src, f.SourceID = f.StationID, f.StationID
		}
		var subject string
		s, ok := reg[schemas.KVKey(src)]
		if !ok {
			// A source registered a moment ago (the gateway registers a
			// station, then publishes at once) may not have reached the
			// watch yet: ask the registry itself before rejecting.
			if s, ok = r.lookup(ctx, src); ok {
				reg = *r.sources.Load()
			}
		}
		if ok {
			if kind == schemas.KindArchivedReplay {
				f.SourceKind = kind
			} else if s.Kind != "" {
				f.SourceKind = s.Kind
			} else if f.SourceKind == "" {
				f.SourceKind = kind
			}
			if f.Emergency() {
				f.Priority = schemas.PriorityEmergency
				nEmerg++
			} else {
				f.Priority = schemas.PriorityRoutine
				nRoutine++
			}
			subject = schemas.RoutedSubject(f.Priority, src)
		} else {
			subject = schemas.RejectedSubject(src)
			nRejected++
		}
		o := index[subject]
		if o == nil {
			o = &out{subject: subject, batch: schemas.FrameBatch{StationID: src}}
			index[subject] = o
			outs = append(outs, o)
		}
		o.batch.Frames = append(o.batch.Frames, *f)
	}
	seq := bus.StoredID(m)
	errc := make(chan error, len(outs))
	for i, o := range outs {
		data := schemas.AppendFrameBatch(nil, &o.batch)
		msg := bus.NewMsg(o.subject, data, "route:"+seq+":"+strconv.Itoa(i))
		if err := pub.PublishAsync(ctx, msg, func(_ *jetstream.PubAck, err error) { errc <- err }); err != nil {
			errc <- err
		}
	}
	for range outs {
		if err := <-errc; err != nil {
			return fmt.Errorf("router: outputs not stored (the batch will be redelivered): %w", err)
		}
	}
	if nRejected > 0 {
		r.log.Warn("router: frames from unregistered sources kept aside", "station", in.StationID, "frames", nRejected)
	}
	r.ingested.Add(uint64(len(in.Frames)))
	r.routed.Add(nEmerg + nRoutine)
	r.rejected.Add(nRejected)
	framesTotal.WithLabelValues("emergency").Add(float64(nEmerg))
	framesTotal.WithLabelValues("routine").Add(float64(nRoutine))
	framesTotal.WithLabelValues("rejected").Add(float64(nRejected))
	return nil
}

// statsLoop adds the router's counts to KV meridian_stats "pipeline"
// (frames_ingested, frames_routed; the processor owns the other fields).
func (r *Router) statsLoop(ctx context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(r.cfg.StatsInterval)
	defer t.Stop()
	var lastI, lastR uint64
	flush := func(c context.Context) {
		i, ro := r.ingested.Load(), r.routed.Load()
		if i == lastI && ro == lastR {
			return
		}
		di, dr := i-lastI, ro-lastR
		if err := bus.KVMerge(c, kv, schemas.KeyPipelineStats, func(p *schemas.PipelineStats) {
			// Deltas, so several router instances add up rather than overwrite.
			p.FramesIngested += di
			p.FramesRouted += dr
			p.UpdatedAtMs = time.Now().UnixMilli()
		}); err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("router: stats not written", "err", err)
			}
			return
		}
		lastI, lastR = i, ro
	}
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			flush(c)
			cancel()
			return
		case <-t.C:
			flush(ctx)
		}
	}
}
