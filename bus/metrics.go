package bus

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the bus helpers, shared by every worker (label "consumer" is
// the durable name).
var (
	consumed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_bus_messages_total",
		Help: "Messages handled by a JetStream consumer, by outcome (ack, nak, term).",
	}, []string{"consumer", "outcome"})
	malformed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_bus_malformed_total",
		Help: "Messages that failed to decode or validate; each was terminated, not redelivered.",
	}, []string{"consumer"})
	handleSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meridian_bus_handle_seconds",
		Help:    "Time a consumer's handler took per call: one message, or for consumers that handle messages in groups (router, archive) one group.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 12),
	}, []string{"consumer"})
	published = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_bus_publish_total",
		Help: "JetStream publishes by outcome (ok, duplicate, retried, failed).",
	}, []string{"outcome"})
	publishAckSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_bus_publish_ack_seconds",
		Help:    "Time from JetStream publish to its ack.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})
	publishInflight = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_bus_publish_inflight",
		Help: "JetStream publishes awaiting their ack, over all publishers.",
	})
)

// CountMalformed counts a malformed message terminated by a consumer that
// settles its messages itself (not through Consume).
func CountMalformed(consumer string) {
	malformed.WithLabelValues(consumer).Inc()
	consumed.WithLabelValues(consumer, "term").Inc()
}

// MalformedCount returns how many malformed messages a consumer terminated
// (for tests and stats snapshots).
func MalformedCount(consumer string) float64 {
	return counterValue(malformed.WithLabelValues(consumer))
}

// HandledCount returns how many messages a consumer finished with outcome
// "ack", "nak" or "term".
func HandledCount(consumer, outcome string) float64 {
	return counterValue(consumed.WithLabelValues(consumer, outcome))
}
