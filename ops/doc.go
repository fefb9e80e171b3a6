// Package ops is what operators of Meridian reach for: the HTTP server on
// --http-addr (health and readiness probes, Prometheus /metrics, and, as
// the workers land, the live dashboard and GET /tle/{norad_id}), plus the
// simulator, the soak, the soft memory limit (memlimit), replay tooling,
// runbook and performance audit that live in sub-folders.
//
// The HTTP server never sits on a hot path: handlers read snapshots (KV
// values, atomics) and never block the pipeline.
package ops
