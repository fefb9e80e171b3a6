package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	sessionsActive = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_gateway_sessions", Help: "TCP sessions open now."})
	sessionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_sessions_total",
		Help: "TCP connections by outcome: accepted, refused (connection limit), idle (closed by the idle timeout), protocol_error, goodbye, eof."},
		[]string{"outcome"})
	framesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_frames_total",
		Help: "Frames read per station (all published; invalid mf1 payloads are published flagged as failed CRC)."},
		[]string{"station"})
	framesAcked = promauto.NewCounter(prometheus.CounterOpts{
		Name: "meridian_gateway_frames_acked_total",
		Help: "Frames whose batch JetStream acknowledged (stored)."})
	bytesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_bytes_total", Help: "Payload bytes read per station."},
		[]string{"station"})
	invalidTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_invalid_frames_total",
		Help: "mf1 payloads whose header could not be decoded, per station (forwarded with flag 0x80 so the processor drops and counts them)."},
		[]string{"station"})
	protocolErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_protocol_errors_total",
		Help: "Sessions closed for a protocol error, by reason (too_large, empty, bad_hello, truncated)."},
		[]string{"reason"})
	batchesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_batches_total",
		Help: "FrameBatches published, by what flushed them (full, linger, emergency, close) and outcome."},
		[]string{"trigger", "outcome"})
	ackSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "meridian_gateway_ack_seconds",
		Help:    "From reading a frame off the socket to JetStream's ack of its batch, by priority.",
		Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16)},
		[]string{"priority"})
	// emergencyAckSeconds is ackSeconds' emergency series, looked up once.
	emergencyAckSeconds = ackSeconds.WithLabelValues("emergency")
	commandsWritten     = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_commands_total",
		Help: "Dispatched commands for connected stations by outcome (written, failed)."},
		[]string{"outcome"})
	udpTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_udp_datagrams_total",
		Help: "UDP detection datagrams by outcome: published, dropped (hand-off full), malformed, failed (publish error)."},
		[]string{"outcome"})
	handlerFrames = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_gateway_handler_frames_total", Help: "Frames seen by each downstream handler."},
		[]string{"handler"})
	handlerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meridian_gateway_handler_lag", Help: "Messages of TLM_INGEST a downstream handler has not processed yet."},
		[]string{"handler"})
)
