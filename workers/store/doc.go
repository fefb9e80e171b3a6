// Package store is the store worker: the one process that opens the
// Orbital Object Registry (store/catalog on store/mvcc on store/lsm) and
// serves it to everything else over NATS (ARCHITECTURE.md, "The OOR
// engine").
//
// Ingest: a durable JetStream consumer ("store") of tle.update.<source>
// for the configured catalog providers. Messages are gathered into
// batches of whatever has arrived (up to MaxBatch) and each batch is one
// MVCC transaction — one WAL record and one fsync, group commit — after
// which every message of the batch is acked. A crash before the ack
// redelivers the batch; applying an update again is a no-op (the
// catalog skips byte-identical records), so redelivery is idempotent.
// Malformed updates and updates from unconfigured sources are counted and
// terminated, never redelivered, and never reach the engine.
//
// Service: the micro service "oor" (nats micro ls/info/stats) with
// oor.tle.get, oor.tle.put, oor.tle.scan, oor.tle.snapshot,
// oor.catalog.merge and oor.stats; msgpack, or JSON when the request has
// Content-Type: application/json. Every read opens an MVCC snapshot (at
// as_of when given), so readers never wait for the ingest.
//
// The worker holds an flock on its directory: a second store worker on the
// same directory fails with bus.ErrDataDirLocked. Its counters are
// Prometheus metrics (meridian_store_*) and a StoreStats snapshot in KV
// meridian_stats key "store".
package store
