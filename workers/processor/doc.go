// Package processor is the telemetry processor: the pipeline stage between
// the bounded hand-off TLM_WORK and TLM_PROCESSED.
//
// The core (Core, no bus imports) processes one FrameBatch message at a
// time, the course's "High-Throughput Telemetry Packet Processor":
//
//	decode    msgpack bytes → a struct-of-arrays Batch: 24-byte FrameHeaders
//	          in one array, payloads and ids copied into one pre-sized arena
//	validate  flags & 0x80 (failed CRC) → dropped, counted as invalid
//	dedup     (satellite_id, sequence) against the batch and a bounded window
//	          of recent keys carried across batches (frames relayed by two
//	          stations during overlapping passes; JetStream redeliveries)
//	sort      an index array by timestamp_ms (stable; payloads never move)
//	forward   frames in order, encoded per source into reused buffers
//	reset     the arena and every slice is cleared, never reallocated
//
// After warm-up a batch costs zero allocations (TestZeroAllocsPerBatch).
//
// The worker (Worker) consumes TLM_WORK's two lanes (durables "processor"
// on tlm.work and "processor-emergency" on tlm.work.emergency, the latter
// on its own connection when Config.EmergencyConn is set), runs the core —
// a waiting emergency batch takes it before a waiting routine one —,
// publishes each source's frames to tlm.processed.<source> with a
// Nats-Msg-Id derived from the input's stream identity (a redelivery after
// a crash is de-duplicated by JetStream), acks the input only after every
// output is acked, and keeps PipelineStats in atomics, mirrored to KV
// meridian_stats key "pipeline". The core is held only while a batch is
// processed and encoded, not while its outputs wait for their acks, so an
// emergency batch never waits a routine batch's round trip.
//
// Caveats. The recent-key window lives in memory: after a restart a frame
// relayed again more than the JetStream duplicate window (2 min) later is
// not recognised (the worker re-reads the last SeedWindow of
// TLM_PROCESSED at start to narrow this). A batch whose outputs are not
// stored has its keys forgotten again (Core.Forget), so a failed publish
// never turns its redelivered frames into "duplicates".
package processor
