// Package bus is Meridian's connection to NATS and JetStream: it starts the
// embedded server (or connects to an external cluster), provisions every
// stream, KV bucket and consumer of the contract, and gives the workers
// typed publish and consume helpers with the cross-cutting concerns —
// decoding, ack/nak/term, metrics, logging — written once, here
// (the watermill "middleware around plain handler funcs" idiom).
//
// Guarantees.
//   - Provision is idempotent (create-or-update) and safe when two
//     processes provision the same server at once.
//   - Publisher.Publish and the callback of Publisher.PublishAsync report
//     success only after JetStream acknowledged the message; a retried
//     publish carries the same Nats-Msg-Id, so JetStream stores it once
//     within the stream's duplicate window.
//   - Consume acks a message only after the handler returned nil; a
//     malformed message is counted, logged and terminated (never
//     redelivered); a handler error naks it with a delay.
//   - An embedded server holds an exclusive lock on its data directory:
//     a second process on the same directory fails with ErrDataDirLocked
//     instead of sharing (and corrupting) the JetStream store.
//
// Caveats. A JetStream ack means the message reached the server's page
// cache: it survives a process crash, not a power cut, unless the server
// runs with SyncAlways (Config.SyncAlways), about 25× slower here.
package bus
