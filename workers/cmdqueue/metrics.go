package cmdqueue

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Prometheus metrics of the command queue worker (default registry,
// served by ops at /metrics). The queue's own counters are in
// queue.Metrics and in KV meridian_stats key "cmdqueue".
var (
	pushedTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "meridian_cmdqueue_commands_pushed_total",
		Help: "Valid commands pushed into the priority queue.",
	})
	dispatchedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_cmdqueue_commands_dispatched_total",
		Help: "Commands published to cmd.dispatch.<station>, by outcome: stored, duplicate (JetStream already held that id), failed (naked for redelivery).",
	}, []string{"outcome"})
	safeModeTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "meridian_cmdqueue_safe_mode_dispatched_total",
		Help: "SAFE_MODE commands popped for dispatch.",
	})
	rejectedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_cmdqueue_commands_rejected_total",
		Help: "Submissions terminated as invalid, by reason (malformed, unknown_kind, priority_range, missing_station, missing_id, repoint_angles, angles_not_allowed, station_mismatch).",
	}, []string{"reason"})
	duplicatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_cmdqueue_duplicates_total",
		Help: "Submissions of a command id already held or recently dispatched, not dispatched again, by where the id was found (held, recent).",
	}, []string{"found"})
	depthGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_cmdqueue_depth",
		Help: "Commands waiting in the priority queue.",
	})
	waitSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_cmdqueue_dispatch_seconds",
		Help:    "Time from a command's receipt by the worker to its dispatch being stored.",
		Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 14),
	})
)
