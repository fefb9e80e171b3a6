package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/ops/sim"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/system"
	"github.com/meridian-ops/meridian/workers/processor"
)

// Config sizes a soak. Zero values are the defaults noted.
type Config struct {
	// Duration of the sustained phase; default 5 minutes.
	Duration time.Duration
	// Rate is the sustained phase's offered load in frames per second over
	// all stations; default 10,000, the pipeline's rated load: the most the
	// whole system carries within every latency goal on the two-core
	// reference machine when fed by the simulator, whose stations send small
	// batches (emergency p99 12.7 ms at 10,000, 24 ms at 20,000;
	// ops/perf/soak.md runs 10 and 11).
	Rate float64
	// FullDuration is an optional overload phase after the sustained one at
	// FullRate (0: none). It shows backpressure and reconciliation beyond
	// the rated load; its latency is reported, not judged.
	FullDuration time.Duration
	// FullRate is the overload phase's offered load; default 100,000 (the
	// course's integrated target).
	FullRate float64
	// EmergencyRatio is the fraction of frames flagged emergency; default 0.01.
	EmergencyRatio float64
	// Stations is the simulated ground stations (4 satellites each); default 12.
	Stations int
	// Sample is the sampling interval; default 5 s. Phases switch on sample
	// boundaries.
	Sample time.Duration
	// Warmup is excluded from the growth checks: the first sample at or
	// after it is the baseline. Default 2 minutes (or half of Duration if
	// shorter): JetStream's 2-minute duplicate window (a message id per
	// stored message), the processor's recent-key window and the Go heap
	// all fill up at first.
	Warmup time.Duration
	// DrainTimeout bounds the wait for the pipeline to empty once the
	// stations stop; default 3 minutes.
	DrainTimeout time.Duration
	// GoroutineSlack is how many goroutines the count may differ from its
	// baseline; default 25 (NATS server and client housekeeping come and go).
	GoroutineSlack int
	// RSSGrowthLimit bounds VmRSS growth from the baseline sample to the end
	// of the run; default 25% of the baseline plus 64 MiB (see the package
	// doc of ops/perf/soak.md for why).
	RSSGrowthLimit uint64
	// LatencyGoal is the emergency p99 goal the report is judged against
	// (not asserted); default 20 ms (issue 4).
	LatencyGoal time.Duration
	// DataDir is where the system keeps its data; default a temporary
	// directory removed afterwards.
	DataDir string
	// Retention is the telemetry streams' retention (system.Config's);
	// default the system's 24 h (`meridian soak` sets 1 minute). A soak shorter than the retention only
	// ever adds stored messages, and the embedded server's per-message
	// state with them; a retention shorter than the soak lets the store
	// reach its steady state, so RSS can be seen to level off.
	Retention time.Duration
	// GoroutineDump, when set, receives the goroutine stacks (pprof debug=1)
	// at the baseline sample, at the last sample and once the stations left.
	GoroutineDump io.Writer
	// HeapProfile, when set, receives a heap profile taken at the last sample.
	HeapProfile io.Writer
	// Progress receives one line per sample while the soak runs (nil: none).
	Progress io.Writer
	// Logger is the system's logger; default one that writes warnings and
	// errors to stderr.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Minute
	}
	if c.Rate <= 0 {
		c.Rate = 10_000
	}
	if c.FullRate <= 0 {
		c.FullRate = 100_000
	}
	if c.EmergencyRatio <= 0 {
		c.EmergencyRatio = 0.01
	}
	if c.Stations <= 0 {
		c.Stations = 12
	}
	if c.Sample <= 0 {
		c.Sample = 5 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = min(2*time.Minute, c.Duration/2)
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 3 * time.Minute
	}
	if c.GoroutineSlack <= 0 {
		c.GoroutineSlack = 25
	}
	if c.LatencyGoal <= 0 {
		c.LatencyGoal = 20 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
}

// Phase is one stretch of constant offered load.
type Phase struct {
	Name     string
	Rate     float64 // offered frames per second, all stations
	Duration time.Duration
}

// Sample is one sampling window.
type Sample struct {
	At            time.Duration // since the stations started
	Phase         string
	Warmup        bool
	Offered       float64 // frames/s the satellites generated
	Sent          float64 // frames/s the stations wrote to the gateway
	Processed     float64 // frames/s out of the processor (unique frames)
	RSS, HWM      uint64  // bytes, /proc/self/status VmRSS and VmHWM
	Heap          uint64  // bytes of live and unswept heap objects
	Goroutines    int
	IngestLag     uint64  // router's pending + unacked messages on TLM_INGEST
	RoutedLag     uint64  // the fan-in's pending + unacked messages on TLM_ROUTED
	WorkDepth     uint64  // messages in the processor's hand-off TLM_WORK (capacity 64)
	Redelivered   int     // messages the router, fan-in and processor consumers are redelivering (AckWait expired or nak)
	Batch         float64 // frames sent per message stored in TLM_INGEST in the window
	Load1         float64 // the machine's 1-minute load average (/proc/loadavg)
	Emergency     int     // emergency frames seen on tlm.processed in the window
	P50, P99, Max time.Duration
}

// PhaseSummary aggregates a phase's samples (warm-up excluded).
type PhaseSummary struct {
	Phase
	Sent, Processed float64 // mean frames/s
	Emergency       int
	P50, P99, Max   time.Duration
	MaxLag          uint64 // TLM_INGEST
	MaxRoutedLag    uint64 // TLM_ROUTED
}

// Report is what a soak measured and concluded.
type Report struct {
	Config  Config
	Phases  []Phase
	Start   time.Time
	Samples []Sample
	Summary []PhaseSummary

	GoroutinesIdleBefore, GoroutinesBaseline, GoroutinesEnd, GoroutinesIdleAfter int
	RSSBaseline, RSSEnd, PeakRSS                                                 uint64
	RSSLimit                                                                     uint64

	Sent, Emergency, Skipped, Relayed         uint64 // from the stations
	Ingested, Processed, Duplicates, Invalid  uint64 // pipeline stats after the drain
	Received, ProbeDropped, ProbeEmergency    uint64 // the tlm.processed subscriber
	Commands, CommandsReceived, TLE, Detected uint64
	Drained                                   time.Duration // from stations stopping to every frame processed

	Failures []string

	phaseLatencies map[string][]time.Duration
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Run performs a soak and returns its report. The error is for a soak that
// could not run (the system did not start, ctx ended); a soak that ran but
// failed a check returns a report with Failures and a nil error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "meridian-soak-")
		if err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	phases := []Phase{{Name: "sustained", Rate: cfg.Rate, Duration: cfg.Duration}}
	if cfg.FullDuration > 0 {
		phases = append(phases, Phase{Name: "full", Rate: cfg.FullRate, Duration: cfg.FullDuration})
	}
	rep := &Report{Config: cfg, Phases: phases}

	s, err := system.Start(ctx, system.Config{DataDir: cfg.DataDir, NATSAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0",
		UDPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Retention: cfg.Retention, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("soak: start: %w", err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	if err := s.Ready(ctx); err != nil {
		return nil, fmt.Errorf("soak: ready: %w", err)
	}

	pr, err := newProbe(s.Bus)
	if err != nil {
		return nil, err
	}
	defer pr.close()
	m, err := newMeter(ctx, s.Bus.JS)
	if err != nil {
		return nil, err
	}
	if err := prime(ctx, s, m, pr); err != nil {
		return nil, err
	}
	rep.GoroutinesIdleBefore = runtime.NumGoroutine()
	dumpGoroutines(cfg.GoroutineDump, "idle before the stations connected")

	simNC, err := s.Bus.Connect("meridian-soak-sim")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer simNC.Close()
	scfg := sim.Config{GatewayAddr: s.Gateway.Addr().String(), Stations: cfg.Stations,
		FrameRate: phases[0].Rate / float64(cfg.Stations), EmergencyRatio: cfg.EmergencyRatio,
		TLERate: 1, CommandRate: 0.5, Logger: cfg.Logger}
	if s.UDP != nil {
		scfg.UDPAddr = s.UDP.Addr().String()
	}
	sm, err := sim.New(scfg, simNC)
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	simDone := make(chan error, 1)
	rep.Start = time.Now()
	go func() { simDone <- sm.Run(simCtx) }()

	if err := rep.sample(ctx, cfg, phases, sm, m, pr, simDone); err != nil {
		return rep, err
	}
	stopSim()
	if err := <-simDone; err != nil {
		rep.fail("simulator: %v", err)
	}
	stopped := time.Now()
	rep.Sent, rep.Emergency, rep.Skipped, rep.Relayed = sm.Stats.Frames.Load(), sm.Stats.Emergency.Load(), sm.Stats.Skipped.Load(), sm.Stats.Relayed.Load()
	rep.Commands, rep.CommandsReceived, rep.TLE, rep.Detected = sm.Stats.Commands.Load(), sm.Stats.Commanded.Load(), sm.Stats.TLEUpdates.Load(), sm.Stats.Detections.Load()

	// Reconcile once the sources have stopped: every frame sent was
	// ingested, then processed or dropped as a duplicate, and the
	// subscriber saw every processed frame.
	var st schemas.PipelineStats
	var lag uint64
	settled := func() bool {
		st, _ = m.stats(ctx)
		lag, _ = m.lag(ctx)
		return st.FramesIngested == rep.Sent && st.FramesProcessed+st.DuplicatesDropped+st.InvalidDropped == st.FramesIngested &&
			lag == 0 && pr.received() >= st.FramesProcessed
	}
	drained := waitFor(ctx, cfg.DrainTimeout, settled)
	rep.Drained = time.Since(stopped)
	rep.Ingested, rep.Processed, rep.Duplicates, rep.Invalid = st.FramesIngested, st.FramesProcessed, st.DuplicatesDropped, st.InvalidDropped
	rep.Received, rep.ProbeDropped, rep.ProbeEmergency = pr.received(), pr.dropped(), pr.emergencyTotal()
	if !drained {
		rep.fail("not drained within %s: sent %d, ingested %d, processed %d + duplicates %d + invalid %d, TLM_INGEST lag %d, subscriber saw %d",
			cfg.DrainTimeout, rep.Sent, rep.Ingested, rep.Processed, rep.Duplicates, rep.Invalid, lag, rep.Received)
	}
	if rep.Invalid != 0 {
		rep.fail("%d frames counted invalid (the simulator sends none)", rep.Invalid)
	}
	if unique := rep.Sent - rep.Relayed; rep.Processed < unique {
		// Relayed counts second copies; a frame whose first station skipped
		// it but whose relay took it is counted in both, so this is a lower bound.
		rep.fail("processed %d frames, fewer than the %d unique frames sent", rep.Processed, unique)
	}
	if rep.ProbeDropped != 0 {
		rep.fail("the tlm.processed subscriber dropped %d messages (slow consumer): latencies are incomplete", rep.ProbeDropped)
	}

	// Once the stations have said GOODBYE their sessions end (and the
	// sources' connection closes): the goroutine count returns to where it
	// was before they connected.
	simNC.Close()
	waitFor(ctx, 15*time.Second, func() bool {
		return runtime.NumGoroutine() <= rep.GoroutinesIdleBefore+idleBound(cfg)
	})
	rep.GoroutinesIdleAfter = runtime.NumGoroutine()
	dumpGoroutines(cfg.GoroutineDump, "idle after the stations left")
	// Each station that was ever connected keeps its durable dispatch
	// consumer on CMD_DISPATCH (commands wait there until it reconnects),
	// which the embedded server serves with 4 goroutines; and the idle count
	// before the stations connected varies by ~20 with how far the
	// components' lazy start had got (JetStream clients start a watcher on
	// their first asynchronous publish), hence twice the slack. A session
	// that leaked its goroutines (~7 each) would exceed this.
	if d, bound := rep.GoroutinesIdleAfter-rep.GoroutinesIdleBefore, idleBound(cfg); d > bound {
		rep.fail("goroutines idle: %d before the stations connected, %d after they left (+%d > %d: 2 × slack %d + 4 per station's dispatch consumer)",
			rep.GoroutinesIdleBefore, rep.GoroutinesIdleAfter, d, bound, cfg.GoroutineSlack)
	}
	_, rep.PeakRSS = readRSS()
	rep.phaseLatencies = pr.phases()
	rep.summarise()
	return rep, nil
}

// prime sends a few routine and emergency frames through every stage from
// a station of its own and waits until they are processed, so that the
// idle goroutine baseline is taken after the components' lazy start
// (JetStream clients start goroutines on their first publish, and every
// stage's emergency lane has a connection of its own). The frames use a
// satellite id the simulator never does; the meter and the probe count
// from what priming left.
func prime(ctx context.Context, s *system.System, m *meter, pr *probe) error {
	c, err := net.Dial("tcp", s.Gateway.Addr().String())
	if err != nil {
		return fmt.Errorf("soak: prime: %w", err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	_ = schemas.WriteFrame(w, []byte("HELLO station=soak-prime format=mf1"))
	const frames = 10
	body := make([]byte, 32)
	for i := range frames {
		h := schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: uint64(i + 1), SatelliteID: 0xFFFF0001}
		if i%5 == 4 {
			h.Flags = schemas.FlagEmergency
		}
		_ = schemas.WriteFrame(w, schemas.AppendMF1(nil, h, body))
	}
	_ = schemas.WriteFrame(w, []byte("GOODBYE"))
	if err := w.Flush(); err != nil {
		return fmt.Errorf("soak: prime: %w", err)
	}
	// The gateway closes the session after GOODBYE; a gateway that does not
	// must not hold the soak up.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.Copy(io.Discard, c)
	var st schemas.PipelineStats
	if !waitFor(ctx, 30*time.Second, func() bool {
		st, _ = m.total(ctx)
		lag, _ := m.lag(ctx)
		return st.FramesIngested >= frames && st.FramesProcessed+st.DuplicatesDropped+st.InvalidDropped == st.FramesIngested &&
			lag == 0 && pr.received() >= st.FramesProcessed
	}) {
		return fmt.Errorf("soak: prime: the priming frames were not processed within 30 s (stats %+v)", st)
	}
	m.base = st
	if m.baseMsgs, err = m.ingestMsgs(ctx); err != nil {
		return fmt.Errorf("soak: prime: %w", err)
	}
	pr.reset()
	return nil
}

// idleBound is how many more goroutines the idle count may have after the
// stations left than before they connected.
func idleBound(cfg Config) int { return 2*cfg.GoroutineSlack + 4*cfg.Stations }

// sample runs the phases, taking a sample every cfg.Sample.
func (r *Report) sample(ctx context.Context, cfg Config, phases []Phase, sm *sim.Sim, m *meter, pr *probe, simDone <-chan error) error {
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	var prevAt time.Duration
	var prevOffered, prevSent, prevProcessed, prevMsgs uint64
	phase, phaseEnd := 0, phases[0].Duration
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("soak: %w", ctx.Err())
		case err := <-simDone:
			return fmt.Errorf("soak: simulator stopped early: %v", err)
		case <-tick.C:
		}
		at := time.Since(r.Start)
		dt := (at - prevAt).Seconds()
		skipped, sent := sm.Stats.Skipped.Load(), sm.Stats.Frames.Load()
		offered := sent + skipped - sm.Stats.Relayed.Load()
		st, err := m.stats(ctx)
		if err != nil {
			cfg.Logger.Warn("soak: pipeline stats", "err", err)
		}
		lag, err := m.lag(ctx)
		if err != nil {
			cfg.Logger.Warn("soak: TLM_INGEST lag", "err", err)
		}
		rlag, redelivered, err := m.routedLag(ctx)
		if err != nil {
			cfg.Logger.Warn("soak: TLM_ROUTED lag", "err", err)
		}
		msgs, err := m.ingestMsgs(ctx)
		if err != nil {
			cfg.Logger.Warn("soak: TLM_INGEST state", "err", err)
		}
		depth, err := m.workDepth(ctx)
		if err != nil {
			cfg.Logger.Warn("soak: TLM_WORK state", "err", err)
		}
		rss, hwm := readRSS()
		smp := Sample{RoutedLag: rlag, WorkDepth: depth, Redelivered: redelivered, Load1: loadAvg(), At: at, Phase: phases[phase].Name, Warmup: at < cfg.Warmup,
			Offered: float64(offered-prevOffered) / dt, Sent: float64(sent-prevSent) / dt, Processed: float64(st.FramesProcessed-prevProcessed) / dt,
			RSS: rss, HWM: hwm, Heap: heapBytes(), Goroutines: runtime.NumGoroutine(), IngestLag: lag}
		if msgs > prevMsgs { // frames the stations sent per message the gateway stored
			smp.Batch = float64(sent-prevSent) / float64(msgs-prevMsgs)
		}
		lat := pr.window(phases[phase].Name)
		smp.Emergency = len(lat)
		smp.P50, smp.P99, smp.Max = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
		r.Samples = append(r.Samples, smp)
		if !smp.Warmup && (len(r.Samples) == 1 || r.Samples[len(r.Samples)-2].Warmup) {
			dumpGoroutines(cfg.GoroutineDump, "baseline (first sample after warm-up)")
		}
		if cfg.Progress != nil {
			fmt.Fprintln(cfg.Progress, smp.line())
		}
		prevAt, prevOffered, prevSent, prevProcessed = at, offered, sent, st.FramesProcessed
		prevMsgs = msgs
		if at+cfg.Sample/2 >= phaseEnd {
			phase++
			if phase == len(phases) {
				dumpGoroutines(cfg.GoroutineDump, "last sample")
				if cfg.HeapProfile != nil {
					runtime.GC()
					_ = pprof.Lookup("heap").WriteTo(cfg.HeapProfile, 0)
				}
				return nil
			}
			phaseEnd += phases[phase].Duration
			sm.SetFrameRate(phases[phase].Rate / float64(cfg.Stations))
		}
	}
}

// summarise applies the growth bounds and aggregates the phases.
func (r *Report) summarise() {
	cfg := r.Config
	var base, end *Sample
	for i := range r.Samples {
		if !r.Samples[i].Warmup && base == nil {
			base = &r.Samples[i]
		}
	}
	// The growth checks cover the sustained phase: a full-rate phase beyond
	// what the pipeline sustains builds a backlog on purpose.
	for i := range r.Samples {
		if r.Samples[i].Phase == r.Phases[0].Name {
			end = &r.Samples[i]
		}
	}
	if base == nil || end == nil || base == end {
		r.fail("too short for growth checks: need a sample after the %s warm-up and a later one", cfg.Warmup)
	} else {
		r.GoroutinesBaseline, r.GoroutinesEnd = base.Goroutines, end.Goroutines
		if d := end.Goroutines - base.Goroutines; d > cfg.GoroutineSlack || -d > cfg.GoroutineSlack {
			r.fail("goroutines: %d after warm-up, %d at the end (%+d, bound ±%d)", base.Goroutines, end.Goroutines, d, cfg.GoroutineSlack)
		}
		r.RSSBaseline, r.RSSEnd = base.RSS, end.RSS
		r.RSSLimit = cfg.RSSGrowthLimit
		if r.RSSLimit == 0 {
			r.RSSLimit = base.RSS/4 + 64<<20
		}
		if end.RSS > base.RSS && end.RSS-base.RSS > r.RSSLimit {
			r.fail("RSS grew %s from %s after warm-up to %s at the end (bound %s)",
				mib(end.RSS-base.RSS), mib(base.RSS), mib(end.RSS), mib(r.RSSLimit))
		}
	}
	for _, ph := range r.Phases {
		ps := PhaseSummary{Phase: ph}
		n := 0
		for _, s := range r.Samples {
			if s.Phase != ph.Name || s.Warmup {
				continue
			}
			ps.Sent += s.Sent
			ps.Processed += s.Processed
			ps.MaxLag = max(ps.MaxLag, s.IngestLag)
			ps.MaxRoutedLag = max(ps.MaxRoutedLag, s.RoutedLag)
			n++
		}
		if n > 0 {
			ps.Sent /= float64(n)
			ps.Processed /= float64(n)
		}
		lat := r.phaseLatencies[ph.Name]
		ps.Emergency = len(lat)
		ps.P50, ps.P99, ps.Max = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
		r.Summary = append(r.Summary, ps)
	}
}

func (s Sample) line() string {
	w := " "
	if s.Warmup {
		w = "w"
	}
	return fmt.Sprintf("%6s load %4.1f %-9s%s offered %6.0f/s sent %6.0f/s processed %6.0f/s  %5.1f frames/msg  rss %7s heap %7s  goroutines %4d  lag ingest %6d routed %6d work %2d redelivering %3d  emergency n=%4d p50 %s p99 %s max %s",
		s.At.Round(time.Second), s.Load1, s.Phase, w, s.Offered, s.Sent, s.Processed, s.Batch, mib(s.RSS), mib(s.Heap), s.Goroutines, s.IngestLag, s.RoutedLag, s.WorkDepth, s.Redelivered,
		s.Emergency, ms(s.P50), ms(s.P99), ms(s.Max))
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

// percentile of sorted durations (q in [0,1]; 0 for none).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return cond()
		case <-poll.C:
		}
	}
	return true
}

func dumpGoroutines(w io.Writer, when string) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "===== goroutines: %s =====\n", when)
	_ = pprof.Lookup("goroutine").WriteTo(w, 1)
}

// loadAvg is the 1-minute load average (0 when unavailable).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(string(f[0]), 64)
	return v
}

// readRSS returns VmRSS and VmHWM in bytes (zero when unavailable).
func readRSS() (rss, hwm uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) >= 2 {
			kb, _ := strconv.ParseUint(string(fields[1]), 10, 64)
			*dst = kb << 10
		}
	}
	return rss, hwm
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapBytes() uint64 {
	s := slices.Clone(heapSample)
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// meter reads the pipeline's counters and the router's lag.
type meter struct {
	kv      jetstream.KeyValue
	router  jetstream.Consumer
	routerE jetstream.Consumer // the stations' emergency lane
	fanin   []jetstream.Consumer
	proc    jetstream.Consumer
	ingest  jetstream.Stream
	work    jetstream.Stream

	// What the priming run left (see prime): stats and counts are
	// reported from there on.
	base     schemas.PipelineStats
	baseMsgs uint64
}

func newMeter(ctx context.Context, js jetstream.JetStream) (*meter, error) {
	kv, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return nil, fmt.Errorf("soak: KV %s: %w", schemas.BucketStats, err)
	}
	m := &meter{kv: kv}
	// The router creates its durable as it starts; wait for it.
	ok := waitFor(ctx, 10*time.Second, func() bool {
		m.router, err = js.Consumer(ctx, schemas.StreamIngest, "router")
		return err == nil
	})
	if !ok {
		return nil, fmt.Errorf("soak: router consumer on %s: %w", schemas.StreamIngest, err)
	}
	ok = waitFor(ctx, 10*time.Second, func() bool {
		m.routerE, err = js.Consumer(ctx, schemas.StreamIngest, "router-emergency")
		return err == nil
	})
	if !ok {
		return nil, fmt.Errorf("soak: router-emergency consumer on %s: %w", schemas.StreamIngest, err)
	}
	for _, name := range []string{"fanin-emergency", "fanin-routine"} {
		var c jetstream.Consumer
		ok = waitFor(ctx, 10*time.Second, func() bool {
			c, err = js.Consumer(ctx, schemas.StreamRouted, name)
			return err == nil
		})
		if !ok {
			return nil, fmt.Errorf("soak: %s consumer on %s: %w", name, schemas.StreamRouted, err)
		}
		m.fanin = append(m.fanin, c)
	}
	ok = waitFor(ctx, 10*time.Second, func() bool {
		m.proc, err = js.Consumer(ctx, schemas.StreamWork, "processor")
		return err == nil
	})
	if !ok {
		return nil, fmt.Errorf("soak: processor consumer on %s: %w", schemas.StreamWork, err)
	}
	if m.ingest, err = js.Stream(ctx, schemas.StreamIngest); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	if m.work, err = js.Stream(ctx, schemas.StreamWork); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	return m, nil
}

// stats is the pipeline's counts since the priming run.
func (m *meter) stats(ctx context.Context) (schemas.PipelineStats, error) {
	ps, err := m.total(ctx)
	ps.FramesIngested -= min(ps.FramesIngested, m.base.FramesIngested)
	ps.FramesRouted -= min(ps.FramesRouted, m.base.FramesRouted)
	ps.FramesProcessed -= min(ps.FramesProcessed, m.base.FramesProcessed)
	ps.EmergencyCount -= min(ps.EmergencyCount, m.base.EmergencyCount)
	ps.DuplicatesDropped -= min(ps.DuplicatesDropped, m.base.DuplicatesDropped)
	ps.InvalidDropped -= min(ps.InvalidDropped, m.base.InvalidDropped)
	return ps, err
}

func (m *meter) total(ctx context.Context) (schemas.PipelineStats, error) {
	var ps schemas.PipelineStats
	_, err := bus.KVGet(ctx, m.kv, schemas.KeyPipelineStats, &ps)
	return ps, err
}

// routedLag is the fan-in's backlog on TLM_ROUTED, and how many messages
// the pipeline's consumers are redelivering.
func (m *meter) routedLag(ctx context.Context) (lag uint64, redelivered int, err error) {
	for _, c := range m.fanin {
		info, err := c.Info(ctx)
		if err != nil {
			return lag, redelivered, err
		}
		lag += info.NumPending + uint64(info.NumAckPending)
		redelivered += info.NumRedelivered
	}
	for _, c := range []jetstream.Consumer{m.router, m.proc} {
		info, err := c.Info(ctx)
		if err != nil {
			return lag, redelivered, err
		}
		redelivered += info.NumRedelivered
	}
	return lag, redelivered, nil
}

// ingestMsgs is how many messages TLM_INGEST has stored (its last sequence).
func (m *meter) ingestMsgs(ctx context.Context) (uint64, error) {
	info, err := m.ingest.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq - min(info.State.LastSeq, m.baseMsgs), nil
}

// workDepth is how many messages wait in TLM_WORK: full (64) means the
// processor is the narrower stage, near empty that the fan-in is.
func (m *meter) workDepth(ctx context.Context) (uint64, error) {
	info, err := m.work.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// lag is the router's backlog on TLM_INGEST, both lanes.
func (m *meter) lag(ctx context.Context) (uint64, error) {
	var lag uint64
	for _, c := range []jetstream.Consumer{m.router, m.routerE} {
		info, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		lag += info.NumPending + uint64(info.NumAckPending)
	}
	return lag, nil
}

// probe subscribes to tlm.processed.> on its own connection, counts
// frames and records emergency frames' end-to-end latency. It decodes
// with the processor's allocation-free core so that measuring costs the
// pipeline little CPU.
type probe struct {
	nc  *nats.Conn
	sub *nats.Subscription

	mu      sync.Mutex
	core    *processor.Core
	frames  uint64
	emerg   uint64
	win     []time.Duration
	byPhase map[string][]time.Duration
}

func newProbe(b *bus.Bus) (*probe, error) {
	nc, err := b.Connect("meridian-soak-probe")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	p := &probe{nc: nc, core: processor.NewCore(processor.CoreConfig{}), byPhase: map[string][]time.Duration{}}
	p.sub, err = nc.Subscribe(schemas.ProcessedAll, p.handle)
	if err == nil {
		// Bounded, generous: a probe that falls behind says so (dropped)
		// rather than growing the heap it is measuring.
		err = p.sub.SetPendingLimits(200_000, 512<<20)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("soak: subscribe %s: %w", schemas.ProcessedAll, err)
	}
	return p, nil
}

func (p *probe) handle(m *nats.Msg) {
	now := time.Now().UnixMicro()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.core.Process(m.Data); err != nil {
		return
	}
	hs := p.core.Batch().Headers
	p.frames += uint64(len(hs))
	for i := range hs {
		if hs[i].Flags&schemas.FlagEmergency != 0 {
			p.emerg++
			p.win = append(p.win, time.Duration(now-int64(hs[i].TimestampMs)*1000)*time.Microsecond)
		}
	}
	p.core.Rollback() // counting, not de-duplicating
}

// window returns the latencies since the last call, sorted, and files
// them under phase.
func (p *probe) window(phase string) []time.Duration {
	p.mu.Lock()
	w := p.win
	p.win = nil
	p.mu.Unlock()
	slices.Sort(w)
	p.mu.Lock()
	p.byPhase[phase] = append(p.byPhase[phase], w...)
	p.mu.Unlock()
	return w
}

// phases returns every phase's latencies, sorted.
func (p *probe) phases() map[string][]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]time.Duration, len(p.byPhase))
	for k, v := range p.byPhase {
		v = slices.Clone(v)
		slices.Sort(v)
		out[k] = v
	}
	return out
}

// reset forgets what the probe saw so far (the priming run's frames).
func (p *probe) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames, p.emerg, p.win = 0, 0, nil
}

func (p *probe) received() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frames
}

func (p *probe) emergencyTotal() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.emerg
}

func (p *probe) dropped() uint64 {
	n, _ := p.sub.Dropped()
	return uint64(n)
}

func (p *probe) close() {
	_ = p.sub.Unsubscribe()
	p.nc.Close()
}
