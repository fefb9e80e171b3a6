package gsclient

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the ground-station client, on the default registry.
var (
	framesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gsclient_frames_total",
		Help: "Frames read from dialled stations by outcome: forwarded (handed to the publishing stage), dropped (hand-off full), invalid (bad mf1 header).",
	}, []string{"station", "outcome"})
	transitions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gsclient_transitions_total",
		Help: "Session state transitions by station and new state.",
	}, []string{"station", "state"})
	batchesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gsclient_batches_total",
		Help: "FrameBatches published to tlm.ingest.<station> by outcome (ok, failed).",
	}, []string{"outcome"})
	tleFetches = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gsclient_tle_fetches_total",
		Help: "TLE fetches from the mission API by outcome: ok, retried (one retry), failed (gave up).",
	}, []string{"outcome"})
)
