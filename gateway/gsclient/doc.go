// Package gsclient is the ground-station client of ARCHITECTURE.md's
// gateway box ("gs-client: dials stations, reconnects, refreshes TLEs"):
// for stations that expect us to dial them. One Client owns one station's
// session; a Fleet runs many from a config file.
//
// # Data path
//
//	station ──TCP (u32 BE length-prefixed mf1 frames)──▶ read loop
//	   read loop ──non-blocking hand-off (bounded chan)──▶ publishing stage
//	   publishing stage ──FrameBatch, Nats-Msg-Id──▶ tlm.ingest.<station>
//
// Each mf1 frame becomes a schemas.Frame: station_id and source_id are the
// configured station, source_kind live_uplink, priority emergency when
// flags&0x01, and Tle the element set most recently fetched for the
// station's satellite. The read loop never blocks on the pipeline: when the
// hand-off is full the frame is dropped, counted
// (meridian_gsclient_frames_total{outcome="dropped"}, Stats.FramesDropped)
// and warned about (course criterion 5). The publishing stage batches up to
// BatchSize frames or 512 KiB, waits at most Linger for a partial batch,
// and publishes an emergency frame at once.
//
// # Session state machine
//
//	Connecting{attempt} ──dial ok──▶ Connected{since} ──lost──▶ Reconnecting{attempt, next_retry}
//	      ▲                                                          │
//	      └────────────────────── backoff elapsed ◀──────────────────┘
//	Connected ──ctx done──▶ Disconnecting ──▶ Stopped
//	Reconnecting ──failing ≥ FailAfter──▶ Failed{reason}   (Run returns ErrFailed)
//
// Every transition is written synchronously, in order, to KV
// meridian_sessions under schemas.KVKey(station) with origin "gs-client",
// so a KV watcher sees each one (criterion 7); WithStateHook observes them
// in-process. The station is registered in KV meridian_sources (kind
// live_uplink) when its first session connects.
//
// # Guarantees
//
//   - Reconnect on EOF, read error, protocol error or read timeout, after
//     BackoffInitial·2^(n-1) capped at BackoffMax: 1, 2, 4, 8, 16, 30, 30 … s
//     by default (criteria 1, 2); jitter only shortens a wait.
//   - Failure window: the time spent failing (dialling and waiting, not time
//     connected) since the last session that delivered a frame; once it
//     reaches FailAfter (5 min) the state is Failed and retrying stops
//     (criterion 3). A session that connects but delivers nothing does not
//     reset the backoff, so a station that accepts and hangs up at once is
//     not hammered every second.
//   - TLE refresh while connected: GET {APIBase}/tle/{NoradID} on connect
//     (unless the last attempt is younger than TLERefresh) and every
//     TLERefresh; 3 s connect and 15 s request timeouts; up to 3 attempts
//     with exponential backoff and jitter on network errors and 5xx,
//     Retry-After honoured on 429, no retry on other 4xx (criterion 4). A
//     failed refresh keeps the previous element set on frames.
//   - Shutdown (ctx cancelled): a frame already begun is read to its end
//     (within ShutdownTimeout) and forwarded; then GOODBYE is sent, the
//     write side is shut, the station's close is awaited briefly, the
//     publishing stage drains and Stopped is published (criterion 6).
//
// Time for backoff, the failure window and the refresh interval comes from
// a clock.Clock (WithClock), so tests run minutes of schedule in
// milliseconds; socket deadlines (read timeout, shutdown grace) use real
// time.
//
// # Caveats
//
//   - The mf1 header is required: a payload that is not a valid mf1 frame
//     is counted as invalid and skipped (the session stays up). HELLO frames
//     from the station are ignored; GOODBYE from the station ends the
//     session and the client reconnects (the next pass).
//   - Publishing is at-most-once across a crash of this process: frames in
//     the hand-off or in flight are lost if the process dies; the station
//     is not acknowledged per frame.
//   - Counters in Stats and metrics are per process; the KV session state
//     is the cross-process view.
//   - State writes are synchronous so none is coalesced; while NATS is
//     unreachable each waits up to 2 s (then is logged and skipped), which
//     slows the state machine but never the read loop of a live session.
//   - Shutdown takes about ShutdownTimeout at most, plus up to 1 s of
//     GOODBYE grace when a station neither reads nor closes.
package gsclient
