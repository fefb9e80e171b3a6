// Package cmdqueue is Meridian's telecommand queue worker (the "cmdqueue"
// box of ARCHITECTURE.md): it takes commands submitted on
// cmd.submit.<station> (stream CMD), validates them, orders them by
// priority in an in-process queue (package queue) and dispatches them to
// cmd.dispatch.<station> (stream CMD_DISPATCH), where the gateway's session
// for that station picks them up, highest priority first, whenever the
// station is connected.
//
//	cmd.submit.<st> ──CMD (work queue)──▶ Worker.receive ──▶ queue ──▶ dispatcher ──▶ cmd.dispatch.<st>
//	                  durable "cmdqueue",   validate, dedup    priority   Nats-Msg-Id =   (CMD_DISPATCH,
//	                  MaxAckPending=Cap                        order      command id       work queue)
//	                        ▲                                                    │
//	                        └──────────── ack the submit once the dispatch is stored
//
// Guarantees.
//   - A submit message is acked only after its dispatch is stored on
//     CMD_DISPATCH, so an acknowledged command is never lost; a command the
//     worker is holding when it stops is naked and redelivered to the next
//     instance.
//   - MaxAckPending equals the queue's capacity: JetStream never hands the
//     worker more commands than the queue holds, so a full queue is
//     backpressure (commands wait in CMD), not loss.
//   - Invalid submissions (undecodable, unknown kind, priority out of
//     0–255, no station or id, REPOINT without valid angles, angles on
//     another kind, station_id not matching the subject) are logged with
//     the reason, counted (CommandsRejected, Prometheus by reason) and
//     terminated, never redelivered.
//   - A command id is dispatched once: a redelivery of a command the worker
//     holds is folded into it; an id dispatched recently in this process
//     (the last Config.RecentIDs) is acked without dispatch; and the
//     dispatch carries Nats-Msg-Id = id, so after a crash between storing
//     the dispatch and acking the submit, the redelivered command's
//     re-publish is recognised by CMD_DISPATCH's 2-minute duplicate window
//     and not stored again. Held commands are kept alive with InProgress,
//     so that redelivery always comes within AckWait (30 s) of the dispatch.
//   - Dispatch order is the queue's: highest priority first, oldest
//     issued_at first (the stream's timestamp for an unstamped command),
//     arrival order for equal stamps — among the commands held when the
//     dispatcher pops.
//
// Types: Worker and Config (the component), Gate (holds the dispatcher
// back), the client functions Send and Watch, and DecodeSubmit.
//
// Caveats. JetStream rebuilds its duplicate window after a server restart
// only from messages still in the stream: if the whole embedded process
// crashes after a dispatch was stored and already taken by the gateway but
// before the submit was acked, that command can be dispatched a second
// time. Stations should therefore treat the command id as idempotency key.
// Two instances sharing the durable each dispatch in priority order, but
// not in one global order. A dispatch whose publish is retried may land
// after a later one.
package cmdqueue
