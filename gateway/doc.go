// Package gateway is Meridian's thin ingress: it frames, tags and
// publishes; it computes nothing.
//
// Server accepts ground stations on TCP (u32 big-endian length-prefixed
// frames, at most 65,536 bytes). A session may open with
// "HELLO station=<id> format=mf1"; with mf1 each payload starts with the
// 24-byte telemetry header that fills the frame's fields. Routine frames are
// batched per session into schemas.FrameBatch messages on
// tlm.ingest.<station> — a batch leaves when it is full or when its linger
// time (10 ms by default) runs out; each emergency frame leaves at once on
// tlm.ingest.emergency.<station>, through a publish window and a NATS
// connection of its own, so it never waits behind the routine batches in
// flight — unless four of the station's emergency batches already await
// their ack: then it leaves with the next ack, together with the emergency
// frames read meanwhile (under an emergency flood, messages of one frame
// each cost the pipeline more than the frames). Commands dispatched for a connected station
// (cmd.dispatch.<station>) are written back on its session.
// UDPListener publishes SDA detections to sda.detections.<sensor_id>.
// Handlers are the course's downstream handlers: durable consumers of
// TLM_INGEST that each see every frame and lag alone.
//
// Guarantees.
//   - Backpressure, not loss: each session has a bounded window of batches
//     awaiting their JetStream ack; when it is full the session stops
//     reading its socket and TCP flow control slows the station. Nothing
//     the gateway read is dropped silently: a frame is published, or
//     counted (protocol errors close only their own session).
//   - Each batch carries a Nats-Msg-Id (station, session, batch number), so
//     a retried publish is stored once.
//   - Shutdown stops accepting, lets every session finish the frame it is
//     reading (never cutting one in half), flushes its batch and waits for
//     the acks, all within DrainTimeout; then whatever is left is closed.
//   - The UDP receive loop never blocks on the pipeline: when the hand-off
//     is full a datagram is dropped and counted.
//
// Caveats. A TCP station gets no application-level ack: a frame read but
// not yet acked by JetStream when the process is killed is lost, as the
// station's socket already accepted it. Stations that need end-to-end
// acknowledgement should resend after a reconnect; the frame key
// (satellite_id, sequence) lets the processor drop the duplicate.
package gateway
