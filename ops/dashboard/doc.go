// Package dashboard is Meridian's live operator view, served by ops at "/".
//
// A Hub follows the system through cheap, bounded channels only: watches
// on the KV buckets meridian_stats and meridian_sessions (latest values),
// and core-NATS subscriptions with pending limits to cmd.dispatch.> and
// tlm.routed.emergency.> (both low-volume). It never consumes the
// telemetry firehose and never blocks a publisher: a slow browser only
// misses intermediate snapshots. Every second it samples the counters
// into a ring of the last 10 minutes, from which the page draws its charts.
//
// Browsers receive the state as server-sent events (GET /api/events, one
// JSON snapshot per event, coalesced to at most four a second); GET
// /api/state returns the same snapshot once. Static assets are embedded:
// the page needs nothing from the internet.
package dashboard
