// Package soak is the bounded soak test behind `meridian soak`: it starts
// the whole system in this process (embedded NATS, gateway, router, fan-in,
// processor, archive, command queue, dashboard, …) on a fresh data
// directory, drives it with the simulator (ops/sim) at a configurable
// frame rate for a configurable time — a sustained phase, then optionally
// a full-rate phase — and samples the process every few seconds:
//
//   - resident memory (VmRSS and its peak VmHWM from /proc/self/status),
//     the Go heap in use (runtime/metrics) and the goroutine count;
//   - frames sent by the stations and processed by the pipeline (KV
//     meridian_stats "pipeline"), the gateway's frames per message, the
//     router's lag on TLM_INGEST, the fan-in's on TLM_ROUTED, the depth of
//     the processor's hand-off TLM_WORK and the consumers' redeliveries;
//   - the end-to-end latency of emergency frames, from the frame's
//     timestamp_ms (set by the simulated satellite when it generates the
//     frame) to its arrival on tlm.processed.> (a core subscription in this
//     process), as p50/p99/max per sample window.
//
// When the sources stop it waits for the pipeline to drain and checks
// (Report.Failures): every frame the stations sent was ingested and either
// processed or dropped as a duplicate of a frame relayed by two stations;
// the goroutine count at the end is within a small bound of the count
// after warm-up, and back near the idle count once the stations are gone
// (each station leaves its durable dispatch consumer behind, by design);
// resident memory grew less than a bound between the end of warm-up and
// the end of the run. Latency goals are reported, not asserted: on a
// shared two-core machine they measure the machine as much as the code.
//
// Caveats. Everything — the NATS server, every worker, the simulated
// stations and the measuring subscriber — shares one process and its
// CPUs, so the figures are those of the all-in-one deployment. A frame's
// timestamp has millisecond resolution, so latencies read up to 1 ms high.
// RSS and VmHWM are Linux-only (zero elsewhere).
package soak
