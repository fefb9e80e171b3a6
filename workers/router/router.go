// Package router is the first stage of the telemetry pipeline: it
// consumes raw batches from TLM_INGEST — the stations' emergency lane
// (tlm.ingest.emergency.>, durable "router-emergency") apart from their
// routine batches (tlm.ingest.*, durable "router"), so a routine backlog
// never delays an emergency frame — and re-played ones from TLM_REPLAY,
// tags each frame's source kind, and routes it by priority to
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
// Guarantees. An input is acked only after all its outputs are acked.
// Inputs that were waiting together are routed together (one output per
// subject; routine inputs up to 64 or 256 KiB, emergency ones up to 512);
// each output's Nats-Msg-Id is its group's identity (bus.GroupID: every
// input's stored identity) and its subject, so a redelivered group is
// stored once, and inputs regrouped differently after a redelivery make
// new outputs whose frames already processed are dropped by the
// processor's recent-key window. Several router instances on the same
// durable consumer share the work.
package router

import (
	"bytes"
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
	// EmergencyConn, when set, carries the emergency lane (its consumer and
	// its outputs), so emergency frames never queue behind routine traffic
	// in one socket; nil shares the main connection.
	EmergencyConn *nats.Conn
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
		Description: "router: tag and route by priority", FilterSubject: schemas.IngestRoutine,
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256, AckWait: 30 * time.Second})
	if err != nil {
		return err
	}
	// The stations' emergency lane has a consumer, a publish window and a
	// handler slot of its own, so its frames never wait behind a routine
	// backlog in TLM_INGEST nor behind the routine outputs in flight.
	ejs := js
	if r.cfg.EmergencyConn != nil {
		if ejs, err = bus.NewJetStream(r.cfg.EmergencyConn); err != nil {
			return err
		}
	}
	emergency, err := bus.EnsureConsumer(ctx, ejs, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: r.cfg.Durable + "-emergency",
		Description: "router: the stations' emergency lane", FilterSubject: schemas.IngestEmergency,
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 2048, AckWait: 30 * time.Second})
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
	pub, epub := bus.NewPublisher(js, 256, r.log), bus.NewPublisher(ejs, 64, r.log)
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(c)
		_ = epub.Close(c)
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	run := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f() }()
	}
	run(func() error { r.watch(ctx, watcher); return nil })
	run(func() error { r.statsLoop(ctx, stats); return nil })
	run(func() error {
		// Up to 64 waiting inputs routed together, four groups at once:
		// each waits a round trip for its outputs' acks.
		return bus.ConsumeBatch(ctx, ingest, r.cfg.Durable, 64, func(hctx context.Context, ms []jetstream.Msg) []error {
			return r.routeBatch(hctx, pub, ms, schemas.KindLiveUplink)
		}, bus.ConsumeOptions{Logger: r.log, PullMaxBytes: 16 << 20, Concurrency: 4})
	})
	run(func() error {
		return bus.ConsumeBatch(ctx, emergency, r.cfg.Durable+"-emergency", 512, func(hctx context.Context, ms []jetstream.Msg) []error {
			return r.routeBatch(hctx, epub, ms, schemas.KindLiveUplink)
		}, bus.ConsumeOptions{Logger: r.log, PullMaxMessages: 1024, Concurrency: 4})
	})
	run(func() error {
		return bus.ConsumeBatch(ctx, replay, r.cfg.ReplayDurable, 64, func(hctx context.Context, ms []jetstream.Msg) []error {
			return r.routeBatch(hctx, pub, ms, schemas.KindArchivedReplay)
		}, bus.ConsumeOptions{Logger: r.log, PullMaxBytes: 16 << 20, Concurrency: 4})
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

// out accumulates one output subject's frames, encoded.
type out struct {
	subject  string
	src      []byte // the source (a sub-slice of the input)
	prio     schemas.Priority
	rejected bool
	frames   []byte
	n        int
}

// scratch is one route call's reusable output buffers.
type scratch struct{ outs []*out }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (sc *scratch) get(subject string, src []byte, prio schemas.Priority, rejected bool) *out {
	for _, o := range sc.outs {
		if o.subject == "" {
			o.subject, o.src, o.prio, o.rejected = subject, src, prio, rejected
			return o
		}
	}
	o := &out{subject: subject, src: src, prio: prio, rejected: rejected}
	sc.outs = append(sc.outs, o)
	return o
}

// active returns the outputs in use (a prefix of outs: get fills the first
// free slot, and release frees them all).
func (sc *scratch) active() []*out {
	n := 0
	for n < len(sc.outs) && sc.outs[n].subject != "" {
		n++
	}
	return sc.outs[:n]
}

// mark records the outputs' state, to roll a malformed input's frames back.
type mark struct {
	n     int
	sizes []int // len(frames) and n of each active output
}

func (sc *scratch) mark() mark {
	act := sc.active()
	m := mark{n: len(act), sizes: make([]int, 0, 2*len(act))}
	for _, o := range act {
		m.sizes = append(m.sizes, len(o.frames), o.n)
	}
	return m
}

func (sc *scratch) rollback(m mark) {
	for i, o := range sc.active() {
		if i < m.n {
			o.frames, o.n = o.frames[:m.sizes[2*i]], m.sizes[2*i+1]
		} else {
			o.subject, o.src, o.frames, o.n = "", nil, o.frames[:0], 0
		}
	}
}

func (sc *scratch) release() {
	for _, o := range sc.outs {
		o.subject, o.src, o.frames, o.n = "", nil, o.frames[:0], 0
	}
	scratchPool.Put(sc)
}

// split is one input batch's frames sorted into sc's outputs.
type split struct {
	station                      []byte // the input's station_id
	changed                      bool   // some frame was re-encoded (re-tagged)
	emergency, routine, rejected uint64
}

// split reads the batch with the allocation-free scanner and sorts its
// frames into sc's outputs by subject, copying frames that need no change
// byte for byte and re-encoding the ones it tags.
func (r *Router) split(ctx context.Context, sc *scratch, data []byte, kind schemas.SourceKind) (split, error) {
	reg := *r.sources.Load()
	var (
		sp      split
		o       *out // the last frame's output
		lastSrc []byte
		s       schemas.Source
		ok      bool
	)
	station, _, err := schemas.ScanFrameBatch(data, func(f schemas.FrameView) error {
		src := f.SourceID
		if len(src) == 0 {
			src = f.StationID
		}
		if o == nil || !bytes.Equal(src, lastSrc) {
			lastSrc = src
			key := schemas.KVKey(string(src))
			if s, ok = reg[key]; !ok {
				// A source registered a moment ago (the gateway registers a
				// station, then publishes at once) may not have reached the
				// watch yet: ask the registry itself before rejecting.
				if s, ok = r.lookup(ctx, string(src)); ok {
					reg = *r.sources.Load()
				}
			}
		}
		wantKind, prio := schemas.SourceKind(f.SourceKind), schemas.PriorityRoutine
		if ok {
			switch {
			case kind == schemas.KindArchivedReplay:
				wantKind = kind
			case s.Kind != "":
				wantKind = s.Kind
			case len(f.SourceKind) == 0:
				wantKind = kind
			}
			if string(f.Priority) == string(schemas.PriorityEmergency) || f.Flags&schemas.FlagEmergency != 0 {
				prio = schemas.PriorityEmergency
				sp.emergency++
			} else {
				sp.routine++
			}
		} else {
			sp.rejected++
		}
		if o == nil || o.rejected == ok || (ok && o.prio != prio) || !bytes.Equal(o.src, src) {
			o = nil
			for _, c := range sc.outs {
				if c.subject != "" && c.rejected != ok && (!ok || c.prio == prio) && bytes.Equal(c.src, src) {
					o = c
					break
				}
			}
			if o == nil {
				subject := schemas.RejectedSubject(string(src))
				if ok {
					subject = schemas.RoutedSubject(prio, string(src))
				}
				o = sc.get(subject, src, prio, !ok)
			}
		}
		o.n++
		if len(f.SourceID) > 0 && (!ok || (string(f.SourceKind) == string(wantKind) && string(f.Priority) == string(prio))) {
			o.frames = append(o.frames, f.Raw...)
			return nil
		}
		sp.changed = true
		f.SourceID = src
		if ok {
			f.SourceKind, f.Priority = tag(string(wantKind)), tag(string(prio))
		}
		o.frames = schemas.AppendRawFrame(o.frames, &f.RawFrame)
		return nil
	})
	sp.station = station
	return sp, err
}

// tags are the source kinds and priorities as bytes, so re-tagging a frame
// allocates nothing.
var tags = func() map[string][]byte {
	m := map[string][]byte{}
	for _, s := range []string{string(schemas.KindLiveUplink), string(schemas.KindArchivedReplay), string(schemas.KindSensor),
		string(schemas.PriorityEmergency), string(schemas.PriorityRoutine)} {
		m[s] = []byte(s)
	}
	return m
}()

func tag(s string) []byte {
	if b, ok := tags[s]; ok {
		return b
	}
	return []byte(s)
}

// maxRouteBytes bounds the inputs routed together. It keeps every step of
// the pipeline short: the server parses, copies and stores each message in
// one go, and under saturation an emergency frame waits in the Go run
// queues behind such steps. 256 KiB halved emergency p50 behind a
// saturating backlog against 1 MiB and drained it 9% faster
// (ops/perf/pipeline.md, "Fourth pass"); 64 KiB was slower again.
const maxRouteBytes = 256 << 10

// routeBatch routes input batches that were waiting together: their frames
// are split by source and priority into one output per subject, published
// together, and the inputs are acked (by ConsumeBatch) once every output
// is stored. Merging is what lets the router keep up with stations that
// send small batches: the cost of a JetStream round trip is paid per
// merged output, not per input. A lone input that goes whole to one
// subject unchanged (a gateway batch from a registered station) is passed
// on as it came. Outputs carry Nats-Msg-Ids derived from the first input's
// stored identity; a redelivered input merged differently is de-duplicated
// downstream by the processor's frame keys.
func (r *Router) routeBatch(ctx context.Context, pub *bus.Publisher, msgs []jetstream.Msg, kind schemas.SourceKind) []error {
	errs := make([]error, len(msgs))
	for start := 0; start < len(msgs); {
		end, size := start+1, len(msgs[start].Data())
		for end < len(msgs) && size+len(msgs[end].Data()) <= maxRouteBytes {
			size += len(msgs[end].Data())
			end++
		}
		r.routeGroup(ctx, pub, msgs[start:end], errs[start:end], kind)
		start = end
	}
	return errs
}

func (r *Router) routeGroup(ctx context.Context, pub *bus.Publisher, msgs []jetstream.Msg, errs []error, kind schemas.SourceKind) {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	var (
		total split
		first jetstream.Msg // the first input routed
		taken int
	)
	members := make([]jetstream.Msg, 0, len(msgs)) // the inputs routed
	for i, m := range msgs {
		mark := sc.mark()
		sp, err := r.split(ctx, sc, m.Data(), kind)
		if err != nil {
			sc.rollback(mark)
			errs[i] = err // malformed: counted and terminated by bus
			continue
		}
		if first == nil {
			first, total.station = m, sp.station
		}
		taken++
		members = append(members, m)
		total.changed = total.changed || sp.changed
		total.emergency += sp.emergency
		total.routine += sp.routine
		total.rejected += sp.rejected
	}
	if taken == 0 {
		return
	}
	outs := sc.active()
	id := "route:" + bus.GroupID(members)
	errc := make(chan error, len(outs))
	for _, o := range outs {
		var data []byte
		if taken == 1 && len(outs) == 1 && !total.changed && bytes.Equal(total.station, o.src) {
			data = first.Data()
		} else {
			data = schemas.AppendFrameBatchHeaderBytes(make([]byte, 0, len(o.frames)+len(o.src)+24), o.src, o.n)
			data = append(data, o.frames...)
		}
		msg := bus.NewMsg(o.subject, data, id+":"+o.subject)
		if err := pub.PublishAsync(ctx, msg, func(_ *jetstream.PubAck, err error) { errc <- err }); err != nil {
			errc <- err
		}
	}
	var failed error
	for range outs {
		if err := <-errc; err != nil && failed == nil {
			failed = fmt.Errorf("router: outputs not stored (the batch will be redelivered): %w", err)
		}
	}
	if failed != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = failed
			}
		}
		return
	}
	if total.rejected > 0 {
		r.log.Warn("router: frames from unregistered sources kept aside", "station", string(total.station), "frames", total.rejected)
	}
	r.ingested.Add(total.emergency + total.routine + total.rejected)
	r.routed.Add(total.emergency + total.routine)
	r.rejected.Add(total.rejected)
	framesTotal.WithLabelValues("emergency").Add(float64(total.emergency))
	framesTotal.WithLabelValues("routine").Add(float64(total.routine))
	framesTotal.WithLabelValues("rejected").Add(float64(total.rejected))
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
