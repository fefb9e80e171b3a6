// Package queue is the ground-station command queue of the course's
// "Ground Station Command Queue" capstone: a bounded, blocking priority
// queue that many producers fill and one dispatcher drains. It is a plain
// Go library with no bus imports; workers/cmdqueue feeds it from
// JetStream (cmd.submit.>) and publishes what it pops to cmd.dispatch.>.
//
// Ordering. Items leave highest Priority first (0–255; SAFE_MODE 255,
// ABORT_PASS 200, REPOINT 100, STATUS_REQUEST 50, HOUSEKEEPING 10); within
// a priority, oldest IssuedAt first, and items with equal IssuedAt in
// arrival order (Item.Seq).
//
// Guarantees.
//   - Bounded: at most Cap() items are held. Push blocks while the queue is
//     full and never drops; a blocked producer waits on its own condition
//     variable with the lock released, so it never blocks the consumer.
//   - Pop blocks while the queue is empty without busy-waiting: the waiter
//     sleeps on a sync.Cond and is woken only by a Push, Shutdown, or its
//     context ending. Metrics.PopWakeups counts every wake-up so tests can
//     prove an idle consumer makes no progress loop.
//   - Shutdown: later (and blocked) pushes fail with ErrQueueShutdown;
//     consumers still receive everything already queued, in priority order,
//     then Pop returns ErrQueueShutdown.
//   - PushCtx/PopCtx give up with ctx.Err() when their context ends while
//     they are waiting; a call that does not need to wait ignores ctx.
//   - Metrics (commands_pushed, commands_dispatched, safe_mode_count,
//     depth, wake-ups) are atomics, readable without the queue's lock.
//
// Design. A bucket queue: 256 doubly linked lists, one per priority, over
// a fixed array of Cap() nodes with a free list, plus a 256-bit bitmap of
// non-empty priorities. Push and Pop are O(1) (a push whose IssuedAt is
// older than items already queued at its priority walks back from that
// list's tail to its place); after New nothing is allocated.
//
// Types: Queue (the queue), Item (a value and its ordering key), Metrics.
//
// Caveats. Ordering holds among the items present when Pop runs: a
// higher-priority item pushed just after a Pop is dispatched after the item
// that Pop returned. Several consumers may Pop concurrently, but then the
// order in which they act on what they popped is theirs to keep.
// Go mutexes are not poisoned by a panic; the critical sections here
// allocate nothing and index only within the node array, so they cannot
// panic half-way and leave the lists inconsistent (Check verifies this).
package queue
