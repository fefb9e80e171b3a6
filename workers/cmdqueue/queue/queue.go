package queue

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

// ErrQueueShutdown is returned by Push/PushCtx after Shutdown (including to
// producers that were blocked on a full queue: their item was not queued),
// and by Pop/PopCtx once the queue is shut down and empty.
var ErrQueueShutdown = errors.New("queue: command queue is shut down")

// DefaultCapacity is the capacity New uses for a capacity below 1.
const DefaultCapacity = 1024

// maxCapacity keeps node indexes within int32.
const maxCapacity = 1 << 30

// SafeModePriority is SAFE_MODE's priority, the highest there is.
const SafeModePriority = 255

// Item is a queued value with its ordering key.
type Item[T any] struct {
	Value T
	// IssuedAt orders items of equal Priority, oldest first (any clock, e.g.
	// Unix nanoseconds).
	IssuedAt int64
	// Priority 0–255, highest first.
	Priority uint8
	// SafeMode marks a SAFE_MODE command: counted in safe_mode_count when
	// it is dispatched (popped).
	SafeMode bool

	// Seq is set by Push: the item's arrival number (0, 1, 2, ... per
	// queue). Items of equal Priority and IssuedAt leave in Seq order.
	Seq uint64
	// Horizon is set by Pop: how many pushes had completed when this item
	// was popped (every item with Seq < Horizon had been queued). It lets a
	// test replay a concurrent run against a sequential model exactly.
	Horizon uint64
}

// node is one slot of the fixed storage. Free nodes are chained by next.
type node[T any] struct {
	item       Item[T]
	prev, next int32 // -1 = none
}

// Queue is a bounded priority queue of T; see the package doc. The zero
// value is not usable: create one with New.
type Queue[T any] struct {
	mu       sync.Mutex
	notEmpty sync.Cond // consumers wait here for an item (or Shutdown)
	notFull  sync.Cond // producers wait here for a free slot (or Shutdown)

	// Guarded by mu.
	nodes       []node[T]
	free        int32 // head of the free list
	heads       [256]int32
	tails       [256]int32
	nonEmpty    [4]uint64 // bit p set <=> heads[p] != -1
	n           int
	seq         uint64 // next arrival number = pushes completed
	closed      bool
	popWaiting  int // consumers inside notEmpty.Wait
	pushWaiting int // producers inside notFull.Wait

	m Metrics
}

// Metrics are the queue's counters. Every field is an atomic: read them
// from any goroutine without taking the queue's lock.
type Metrics struct {
	pushed      atomic.Uint64
	dispatched  atomic.Uint64
	safeMode    atomic.Uint64
	depth       atomic.Int64
	returned    atomic.Uint64
	popWakeups  atomic.Uint64
	pushWakeups atomic.Uint64
	popWaiting  atomic.Int64
	pushWaiting atomic.Int64
}

// CommandsPushed is the number of items ever pushed.
func (m *Metrics) CommandsPushed() uint64 { return m.pushed.Load() }

// CommandsDispatched is the number of items ever popped.
func (m *Metrics) CommandsDispatched() uint64 { return m.dispatched.Load() }

// SafeModeCount is the number of SAFE_MODE items (Item.SafeMode) popped.
func (m *Metrics) SafeModeCount() uint64 { return m.safeMode.Load() }

// Returned is the number of items removed undispatched by TakeAll.
func (m *Metrics) Returned() uint64 { return m.returned.Load() }

// Depth is the number of items queued now.
func (m *Metrics) Depth() int { return int(m.depth.Load()) }

// PopWakeups counts the times a waiting consumer was woken (by a push,
// Shutdown or its context). An idle consumer does not add to it.
func (m *Metrics) PopWakeups() uint64 { return m.popWakeups.Load() }

// PushWakeups counts the times a producer blocked on a full queue was woken.
func (m *Metrics) PushWakeups() uint64 { return m.pushWakeups.Load() }

// ConsumersWaiting is the number of Pop calls blocked on an empty queue.
func (m *Metrics) ConsumersWaiting() int { return int(m.popWaiting.Load()) }

// ProducersWaiting is the number of Push calls blocked on a full queue.
func (m *Metrics) ProducersWaiting() int { return int(m.pushWaiting.Load()) }

// New returns an empty queue holding at most capacity items
// (DefaultCapacity when capacity < 1). All storage is allocated here.
func New[T any](capacity int) *Queue[T] {
	if capacity < 1 {
		capacity = DefaultCapacity
	}
	if capacity > maxCapacity {
		capacity = maxCapacity
	}
	q := &Queue[T]{nodes: make([]node[T], capacity)}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	for i := range q.nodes {
		q.nodes[i].prev = -1
		q.nodes[i].next = int32(i + 1)
	}
	q.nodes[capacity-1].next = -1
	for p := range q.heads {
		q.heads[p], q.tails[p] = -1, -1
	}
	return q
}

// Cap is the queue's capacity.
func (q *Queue[T]) Cap() int { return len(q.nodes) }

// Len is the number of items queued now (Metrics().Depth without the lock
// would do too; this one is exact under concurrent use).
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	n := q.n
	q.mu.Unlock()
	return n
}

// Metrics returns the queue's lock-free counters.
func (q *Queue[T]) Metrics() *Metrics { return &q.m }

// Push queues it, blocking while the queue is full. It fails only with
// ErrQueueShutdown.
func (q *Queue[T]) Push(it Item[T]) error { return q.PushCtx(context.Background(), it) }

// PushCtx queues it, blocking while the queue is full until a slot frees
// up, the queue is shut down (ErrQueueShutdown) or ctx ends (ctx.Err()).
// The item's Seq is assigned here.
func (q *Queue[T]) PushCtx(ctx context.Context, it Item[T]) error {
	q.mu.Lock()
	// Critical section invariant: nothing below allocates or indexes
	// outside q.nodes, so no panic can leave the lists half-linked while
	// the (never poisoned) mutex is released by a deferred unwind.
	if q.n == len(q.nodes) && !q.closed {
		if err := q.waitLocked(ctx, &q.notFull, true); err != nil {
			q.mu.Unlock()
			return err
		}
	}
	if q.closed {
		q.mu.Unlock()
		return ErrQueueShutdown
	}
	q.insertLocked(it)
	q.m.pushed.Add(1)
	q.m.depth.Store(int64(q.n))
	wake := q.popWaiting > 0
	q.mu.Unlock()
	if wake {
		q.notEmpty.Signal()
	}
	return nil
}

// Pop removes and returns the highest-priority, oldest item, blocking
// while the queue is empty. After Shutdown it keeps returning the items
// left, then ErrQueueShutdown.
func (q *Queue[T]) Pop() (Item[T], error) { return q.PopCtx(context.Background()) }

// PopCtx is Pop that gives up with ctx.Err() when ctx ends while it waits.
func (q *Queue[T]) PopCtx(ctx context.Context) (Item[T], error) {
	q.mu.Lock()
	// Same invariant as PushCtx: the section cannot panic half-way.
	if q.n == 0 && !q.closed {
		if err := q.waitLocked(ctx, &q.notEmpty, false); err != nil {
			q.mu.Unlock()
			return Item[T]{}, err
		}
	}
	if q.n == 0 { // closed and drained
		q.mu.Unlock()
		return Item[T]{}, ErrQueueShutdown
	}
	it := q.takeLocked()
	wake := q.pushWaiting > 0
	q.mu.Unlock()
	if wake {
		q.notFull.Signal()
	}
	return it, nil
}

// TryPop pops an item if one is queued, without blocking.
func (q *Queue[T]) TryPop() (Item[T], bool) {
	q.mu.Lock()
	if q.n == 0 {
		q.mu.Unlock()
		return Item[T]{}, false
	}
	it := q.takeLocked()
	wake := q.pushWaiting > 0
	q.mu.Unlock()
	if wake {
		q.notFull.Signal()
	}
	return it, true
}

// TakeAll removes every queued item, in priority order, without counting
// them as dispatched (Metrics.Returned counts them instead): for handing
// undispatched work back to its source when a consumer stops.
func (q *Queue[T]) TakeAll() []Item[T] {
	q.mu.Lock()
	out := make([]Item[T], 0, q.n)
	for q.n > 0 {
		out = append(out, q.unlinkLocked())
	}
	q.m.returned.Add(uint64(len(out)))
	q.m.depth.Store(0)
	wake := q.pushWaiting > 0
	q.mu.Unlock()
	if wake {
		q.notFull.Broadcast()
	}
	return out
}

// Shutdown stops the queue: pushes (also those blocked now) fail with
// ErrQueueShutdown, and consumers drain what is left, then get
// ErrQueueShutdown. It is idempotent.
func (q *Queue[T]) Shutdown() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.notFull.Broadcast()
	q.notEmpty.Broadcast()
}

// IsShutdown reports whether Shutdown was called.
func (q *Queue[T]) IsShutdown() bool {
	q.mu.Lock()
	c := q.closed
	q.mu.Unlock()
	return c
}

// waitLocked sleeps on c until the queue is ready for this caller (a free
// slot for a producer, an item for a consumer), it is shut down, or ctx
// ends. It is entered and left with q.mu held. Go's sync.Cond has no
// spurious wake-ups, so each loop turn is caused by a Signal/Broadcast;
// the loop re-checks because another caller may have taken the slot or
// item first.
func (q *Queue[T]) waitLocked(ctx context.Context, c *sync.Cond, producer bool) error {
	ready := func() bool {
		if producer {
			return q.n < len(q.nodes)
		}
		return q.n > 0
	}
	var stop func() bool
	if ctx.Done() != nil {
		// Wake every waiter on c when ctx ends; this caller then sees
		// ctx.Err(), the others go back to sleep. Taking the lock orders the
		// Broadcast after this caller has joined c's wait list.
		stop = context.AfterFunc(ctx, func() {
			q.mu.Lock()
			c.Broadcast()
			q.mu.Unlock()
		})
		defer stop()
	}
	for !ready() && !q.closed {
		if err := ctx.Err(); err != nil {
			return err
		}
		if producer {
			q.pushWaiting++
			q.m.pushWaiting.Store(int64(q.pushWaiting))
			c.Wait()
			q.pushWaiting--
			q.m.pushWaiting.Store(int64(q.pushWaiting))
			q.m.pushWakeups.Add(1)
		} else {
			q.popWaiting++
			q.m.popWaiting.Store(int64(q.popWaiting))
			c.Wait()
			q.popWaiting--
			q.m.popWaiting.Store(int64(q.popWaiting))
			q.m.popWakeups.Add(1)
		}
	}
	// A waiter woken when it is ready proceeds even if ctx has ended too, so
	// a Signal meant for it is never swallowed by a cancellation.
	return nil
}

// insertLocked links it into its priority's list, after every item with
// an IssuedAt not later than its own (so equal stamps keep arrival order).
func (q *Queue[T]) insertLocked(it Item[T]) {
	i := q.free
	nd := &q.nodes[i]
	q.free = nd.next
	it.Seq = q.seq
	it.Horizon = 0
	q.seq++
	nd.item = it
	p := it.Priority
	after := q.tails[p]
	for after >= 0 && q.nodes[after].item.IssuedAt > it.IssuedAt {
		after = q.nodes[after].prev
	}
	nd.prev = after
	if after < 0 {
		nd.next = q.heads[p]
		q.heads[p] = i
	} else {
		nd.next = q.nodes[after].next
		q.nodes[after].next = i
	}
	if nd.next < 0 {
		q.tails[p] = i
	} else {
		q.nodes[nd.next].prev = i
	}
	q.nonEmpty[p>>6] |= 1 << (p & 63)
	q.n++
}

// takeLocked pops the head of the highest non-empty priority and counts
// it as dispatched. The caller guarantees q.n > 0.
func (q *Queue[T]) takeLocked() Item[T] {
	it := q.unlinkLocked()
	q.m.dispatched.Add(1)
	if it.SafeMode {
		q.m.safeMode.Add(1)
	}
	q.m.depth.Store(int64(q.n))
	return it
}

// unlinkLocked unlinks and returns the head of the highest non-empty
// priority. The caller guarantees q.n > 0.
func (q *Queue[T]) unlinkLocked() Item[T] {
	p := q.topLocked()
	i := q.heads[p]
	nd := &q.nodes[i]
	q.heads[p] = nd.next
	if nd.next < 0 {
		q.tails[p] = -1
		q.nonEmpty[p>>6] &^= 1 << (p & 63)
	} else {
		q.nodes[nd.next].prev = -1
	}
	it := nd.item
	nd.item = Item[T]{} // drop the reference so the value can be collected
	nd.prev = -1
	nd.next = q.free
	q.free = i
	q.n--
	it.Horizon = q.seq
	return it
}

func (q *Queue[T]) topLocked() uint8 {
	for w := 3; w > 0; w-- {
		if b := q.nonEmpty[w]; b != 0 {
			return uint8(w*64 + 63 - bits.LeadingZeros64(b))
		}
	}
	// Word 0: the caller guarantees an item exists, so b != 0 here.
	return uint8(63 - bits.LeadingZeros64(q.nonEmpty[0]))
}

// Check verifies the queue's invariants: every node is on exactly one list
// (a priority list or the free list), the links agree both ways, each
// priority list is sorted by (IssuedAt, Seq) and holds only its priority,
// the bitmap matches the non-empty lists, and the counters agree.
func (q *Queue[T]) Check() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	seen := make([]bool, len(q.nodes))
	visit := func(i int32) error {
		if i < 0 || int(i) >= len(q.nodes) {
			return fmt.Errorf("queue: node index %d out of range", i)
		}
		if seen[i] {
			return fmt.Errorf("queue: node %d linked twice", i)
		}
		seen[i] = true
		return nil
	}
	total := 0
	for p := range 256 {
		bit := q.nonEmpty[p>>6]&(1<<(p&63)) != 0
		if (q.heads[p] >= 0) != bit {
			return fmt.Errorf("queue: priority %d: bitmap %v but head %d", p, bit, q.heads[p])
		}
		prev := int32(-1)
		for i := q.heads[p]; i >= 0; i = q.nodes[i].next {
			if err := visit(i); err != nil {
				return err
			}
			nd := &q.nodes[i]
			if nd.prev != prev {
				return fmt.Errorf("queue: priority %d: node %d prev %d, want %d", p, i, nd.prev, prev)
			}
			if int(nd.item.Priority) != p {
				return fmt.Errorf("queue: node %d of priority %d is on list %d", i, nd.item.Priority, p)
			}
			if prev >= 0 {
				a, b := &q.nodes[prev].item, &nd.item
				if a.IssuedAt > b.IssuedAt || a.IssuedAt == b.IssuedAt && a.Seq >= b.Seq {
					return fmt.Errorf("queue: priority %d out of order: (%d,#%d) before (%d,#%d)", p, a.IssuedAt, a.Seq, b.IssuedAt, b.Seq)
				}
			}
			if nd.item.Seq >= q.seq {
				return fmt.Errorf("queue: node %d has seq %d >= pushes %d", i, nd.item.Seq, q.seq)
			}
			prev = i
			total++
		}
		if q.tails[p] != prev {
			return fmt.Errorf("queue: priority %d: tail %d, want %d", p, q.tails[p], prev)
		}
	}
	if total != q.n {
		return fmt.Errorf("queue: %d items linked, count says %d", total, q.n)
	}
	free := 0
	for i := q.free; i >= 0; i = q.nodes[i].next {
		if err := visit(i); err != nil {
			return err
		}
		free++
	}
	if free+total != len(q.nodes) {
		return fmt.Errorf("queue: %d free + %d queued != capacity %d", free, total, len(q.nodes))
	}
	if d := q.m.depth.Load(); d != int64(q.n) {
		return fmt.Errorf("queue: depth metric %d, count %d", d, q.n)
	}
	if pu, di, re := q.m.pushed.Load(), q.m.dispatched.Load(), q.m.returned.Load(); pu-di-re != uint64(q.n) {
		return fmt.Errorf("queue: pushed %d - dispatched %d - returned %d != depth %d", pu, di, re, q.n)
	}
	return nil
}
