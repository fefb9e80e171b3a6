package store

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	updatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_store_updates_total",
		Help: "TLE updates taken from the TLE stream, by outcome (written, unchanged, malformed, unknown_source).",
	}, []string{"outcome"})
	commitSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_store_commit_seconds",
		Help:    "Time to commit one ingest batch durably (the group commit).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})
	batchSize = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "meridian_store_batch_updates",
		Help:    "Updates per ingest batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	opsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_store_operations_total",
		Help: "Store operations by kind (get, scan, snapshot, merge, put, commit, conflict).",
	}, []string{"op"})
	objectsGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_store_objects",
		Help: "Objects in the resolved catalog.",
	})
	walBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_store_wal_bytes",
		Help: "Bytes written to the store's WAL since it opened.",
	})
	sstables = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meridian_store_sstables",
		Help: "SSTables per LSM level.",
	}, []string{"level"})
	watermarkAge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_store_watermark_age_seconds",
		Help: "How far the MVCC GC watermark lags the newest commit (old snapshots pin versions).",
	})
)

func init() {
	for _, o := range []string{"written", "unchanged", "malformed", "unknown_source"} {
		updatesTotal.WithLabelValues(o)
	}
	for _, o := range []string{"get", "scan", "snapshot", "merge", "put", "commit"} {
		opsTotal.WithLabelValues(o)
	}
}
