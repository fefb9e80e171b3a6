package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after 10s: "+msg, args...)
		}
		time.Sleep(time.Millisecond)
	}
}

func check(t *testing.T, q interface{ Check() error }) {
	t.Helper()
	if err := q.Check(); err != nil {
		t.Fatal(err)
	}
}

func drain[T any](t *testing.T, q *Queue[T]) []Item[T] {
	t.Helper()
	var out []Item[T]
	for {
		it, ok := q.TryPop()
		if !ok {
			return out
		}
		out = append(out, it)
	}
}

// Criterion 1: highest priority first.
func TestPriorityOrder(t *testing.T) {
	q := New[string](16)
	for _, c := range []struct {
		name string
		prio uint8
	}{{"HOUSEKEEPING", 10}, {"REPOINT", 100}, {"SAFE_MODE", 255}, {"STATUS_REQUEST", 50}, {"ABORT_PASS", 200}, {"P0", 0}} {
		if err := q.Push(Item[string]{Value: c.name, Priority: c.prio, SafeMode: c.prio == 255}); err != nil {
			t.Fatal(err)
		}
		check(t, q)
	}
	var got []string
	for range 6 {
		it, err := q.Pop()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.Value)
		check(t, q)
	}
	want := []string{"SAFE_MODE", "ABORT_PASS", "REPOINT", "STATUS_REQUEST", "HOUSEKEEPING", "P0"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	m := q.Metrics()
	if m.CommandsPushed() != 6 || m.CommandsDispatched() != 6 || m.SafeModeCount() != 1 || m.Depth() != 0 {
		t.Fatalf("metrics pushed=%d dispatched=%d safe=%d depth=%d", m.CommandsPushed(), m.CommandsDispatched(), m.SafeModeCount(), m.Depth())
	}
}

// Criterion 1: oldest IssuedAt first within a priority, whatever the
// arrival order; equal stamps leave in arrival order.
func TestOldestFirstWithinPriority(t *testing.T) {
	q := New[int](32)
	// value = expected rank. Arrival order deliberately differs from IssuedAt.
	pushes := []struct {
		issued int64
		value  int
	}{{50, 4}, {10, 0}, {30, 2}, {30, 3}, {20, 1}, {90, 7}, {60, 5}, {60, 6}}
	for _, p := range pushes {
		if err := q.Push(Item[int]{Value: p.value, Priority: 100, IssuedAt: p.issued}); err != nil {
			t.Fatal(err)
		}
		check(t, q)
	}
	// A higher priority pushed last still goes first.
	if err := q.Push(Item[int]{Value: -1, Priority: 200, IssuedAt: 1000}); err != nil {
		t.Fatal(err)
	}
	got := drain(t, q)
	var vals []int
	for _, it := range got {
		vals = append(vals, it.Value)
	}
	if want := []int{-1, 0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(vals, want) {
		t.Fatalf("order %v, want %v", vals, want)
	}
	check(t, q)
}

// Criterion 2: an idle consumer sleeps. A Pop on an empty queue is woken
// by nothing while idle (zero wake-ups, so no polling loop), and exactly
// once by the push that feeds it.
func TestIdlePopDoesNotSpin(t *testing.T) {
	q := New[int](4)
	got := make(chan Item[int], 1)
	go func() {
		it, err := q.Pop()
		if err != nil {
			t.Error(err)
		}
		got <- it
	}()
	eventually(t, func() bool { return q.Metrics().ConsumersWaiting() == 1 }, "consumer never blocked")
	// The idle period under test: a spinning or timed-polling consumer
	// would wake many times in it.
	time.Sleep(200 * time.Millisecond)
	if w := q.Metrics().PopWakeups(); w != 0 {
		t.Fatalf("idle consumer woke %d times", w)
	}
	if err := q.Push(Item[int]{Value: 7, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if it := <-got; it.Value != 7 {
		t.Fatalf("popped %v", it)
	}
	if w := q.Metrics().PopWakeups(); w != 1 {
		t.Fatalf("consumer woke %d times for one push, want 1", w)
	}
}

// Criterion 4: the metrics are readable while another goroutine holds the
// queue's lock (they would deadlock here if they took it).
func TestMetricsReadableWithoutLock(t *testing.T) {
	q := New[int](4)
	_ = q.Push(Item[int]{Priority: 255, SafeMode: true})
	_, _ = q.Pop()
	_ = q.Push(Item[int]{Priority: 3})
	q.mu.Lock()
	m := q.Metrics()
	got := [...]uint64{m.CommandsPushed(), m.CommandsDispatched(), m.SafeModeCount(), uint64(m.Depth()),
		m.PopWakeups(), m.PushWakeups(), uint64(m.ConsumersWaiting()), uint64(m.ProducersWaiting())}
	q.mu.Unlock()
	if want := [...]uint64{2, 1, 1, 1, 0, 0, 0, 0}; got != want {
		t.Fatalf("metrics %v, want %v", got, want)
	}
}

// Criterion 6: capacity 2 and 10 concurrent pushers: 8 block (holding
// nothing in the queue), the consumer is not blocked by them, and every
// command comes out exactly once.
func TestCapacityBlocksAndLosesNothing(t *testing.T) {
	q := New[int](2)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := q.Push(Item[int]{Value: i, Priority: uint8(i * 20), IssuedAt: int64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	eventually(t, func() bool { return q.Metrics().ProducersWaiting() == 8 }, "want 8 blocked producers, have %d", q.Metrics().ProducersWaiting())
	if n := q.Len(); n != 2 {
		t.Fatalf("full queue holds %d, want 2", n)
	}
	if p := q.Metrics().CommandsPushed(); p != 2 {
		t.Fatalf("pushed %d while full, want 2", p)
	}
	check(t, q)
	seen := map[int]bool{}
	for range 10 {
		it, err := q.Pop() // would hang if blocked producers held the lock
		if err != nil {
			t.Fatal(err)
		}
		if seen[it.Value] {
			t.Fatalf("value %d popped twice", it.Value)
		}
		seen[it.Value] = true
		if q.Len() > 2 {
			t.Fatalf("queue over capacity: %d", q.Len())
		}
	}
	wg.Wait()
	if len(seen) != 10 || q.Metrics().CommandsPushed() != 10 || q.Metrics().PushWakeups() == 0 {
		t.Fatalf("seen %d, pushed %d, push wake-ups %d", len(seen), q.Metrics().CommandsPushed(), q.Metrics().PushWakeups())
	}
	check(t, q)
}

// Criterion 5: after Shutdown pushes fail, the consumer gets everything
// left in priority order, then ErrQueueShutdown.
func TestShutdownDrainsInOrder(t *testing.T) {
	q := New[int](64)
	r := rand.New(rand.NewPCG(1, 2))
	var model []Item[int]
	for i := range 40 {
		it := Item[int]{Value: i, Priority: uint8(r.IntN(6) * 50), IssuedAt: r.Int64N(10)}
		if err := q.Push(it); err != nil {
			t.Fatal(err)
		}
		it.Seq = uint64(i)
		model = append(model, it)
	}
	q.Shutdown()
	q.Shutdown() // idempotent
	if err := q.Push(Item[int]{Value: 99}); !errors.Is(err, ErrQueueShutdown) {
		t.Fatalf("push after shutdown: %v", err)
	}
	slices.SortStableFunc(model, cmpItems[int])
	for i, want := range model {
		it, err := q.Pop()
		if err != nil {
			t.Fatalf("pop %d: %v", i, err)
		}
		if it.Value != want.Value {
			t.Fatalf("pop %d: value %d, want %d", i, it.Value, want.Value)
		}
	}
	for range 2 {
		if _, err := q.Pop(); !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("pop of drained queue: %v", err)
		}
	}
	if q.Metrics().CommandsDispatched() != 40 || q.Metrics().CommandsPushed() != 40 {
		t.Fatalf("pushed %d dispatched %d", q.Metrics().CommandsPushed(), q.Metrics().CommandsDispatched())
	}
	check(t, q)
}

// Shutdown wakes blocked consumers (empty queue) and blocked producers
// (full queue); the latter's items are not queued.
func TestShutdownWakesWaiters(t *testing.T) {
	empty := New[int](1)
	full := New[int](1)
	_ = full.Push(Item[int]{Value: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 3 {
		wg.Go(func() { _, err := empty.Pop(); errs <- err })
		wg.Go(func() { errs <- full.Push(Item[int]{Value: 2}) })
	}
	eventually(t, func() bool {
		return empty.Metrics().ConsumersWaiting() == 3 && full.Metrics().ProducersWaiting() == 3
	}, "waiters did not block")
	empty.Shutdown()
	full.Shutdown()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrQueueShutdown) {
			t.Fatalf("waiter returned %v", err)
		}
	}
	if it, err := full.Pop(); err != nil || it.Value != 1 {
		t.Fatalf("drain of full queue: %v %v", it, err)
	}
	if _, err := full.Pop(); !errors.Is(err, ErrQueueShutdown) {
		t.Fatalf("blocked producer's item was queued: %v", err)
	}
}

// Context cancellation: waiting calls give up with ctx.Err() and leave the
// queue intact; a call that need not wait ignores ctx; a cancelled waiter
// does not swallow the wake-up meant for another.
func TestContextCancellation(t *testing.T) {
	q := New[int](1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := q.PopCtx(ctx); done <- err }()
	eventually(t, func() bool { return q.Metrics().ConsumersWaiting() == 1 }, "pop did not block")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("PopCtx: %v", err)
	}

	_ = q.Push(Item[int]{Value: 1})
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if err := q.PushCtx(dctx, Item[int]{Value: 2}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PushCtx on full queue: %v", err)
	}
	check(t, q)
	if it, err := q.PopCtx(ctx); err != nil || it.Value != 1 { // ctx is cancelled, but no wait is needed
		t.Fatalf("PopCtx with an item ready: %v %v", it, err)
	}
	if q.Len() != 0 || q.Metrics().CommandsPushed() != 1 {
		t.Fatalf("cancelled push left a trace: len %d pushed %d", q.Len(), q.Metrics().CommandsPushed())
	}

	// Two consumers wait; one is cancelled; the push must reach the other.
	cctx, ccancel := context.WithCancel(context.Background())
	got := make(chan int, 1)
	cancelled := make(chan error, 1)
	go func() { _, err := q.PopCtx(cctx); cancelled <- err }()
	go func() {
		it, err := q.Pop()
		if err != nil {
			t.Error(err)
		}
		got <- it.Value
	}()
	eventually(t, func() bool { return q.Metrics().ConsumersWaiting() == 2 }, "consumers did not block")
	_ = q.Push(Item[int]{Value: 3})
	ccancel()
	// Whichever consumer took the item, the other must finish too: the
	// cancelled one by ctx (or by taking the item), the plain one by the
	// item or, if the cancelled one took it, by a second push.
	select {
	case v := <-got:
		if v != 3 {
			t.Fatalf("got %d", v)
		}
		<-cancelled
	case err := <-cancelled:
		if err == nil { // it took the item: feed the other one
			_ = q.Push(Item[int]{Value: 3})
		}
		if v := <-got; v != 3 {
			t.Fatalf("got %d", v)
		}
	}
	check(t, q)
}

// cmpItems is the reference order: priority desc, IssuedAt asc, Seq asc.
func cmpItems[T any](a, b Item[T]) int {
	switch {
	case a.Priority != b.Priority:
		return int(b.Priority) - int(a.Priority)
	case a.IssuedAt < b.IssuedAt:
		return -1
	case a.IssuedAt > b.IssuedAt:
		return 1
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// model is the reference: an unsorted slice, popped by linear search.
type model struct{ items []Item[int] }

func (m *model) push(it Item[int]) { m.items = append(m.items, it) }
func (m *model) pop() (Item[int], bool) {
	if len(m.items) == 0 {
		return Item[int]{}, false
	}
	best := 0
	for i := range m.items {
		if cmpItems(m.items[i], m.items[best]) < 0 {
			best = i
		}
	}
	it := m.items[best]
	m.items = slices.Delete(m.items, best, best+1)
	return it, true
}

// runOps drives a queue and the model with one op per byte and compares
// every pop; it returns an error description or "".
func runOps(t *testing.T, capacity int, ops []byte) {
	q := New[int](capacity)
	var m model
	var seq uint64
	for i, op := range ops {
		if op&1 == 0 && q.Len() < capacity {
			it := Item[int]{Value: i, Priority: op >> 5 << 5, IssuedAt: int64(op>>1) & 7, SafeMode: op>>5 == 7}
			if err := q.Push(it); err != nil {
				t.Fatal(err)
			}
			it.Seq = seq
			seq++
			m.push(it)
		} else {
			got, ok := q.TryPop()
			want, wok := m.pop()
			if ok != wok || ok && (got.Value != want.Value || got.Seq != want.Seq) {
				t.Fatalf("op %d: pop (%v,%v), model (%v,%v)", i, got, ok, want, wok)
			}
		}
		if err := q.Check(); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
}

// A sequential model-based test over random op sequences.
func TestSequentialAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 200 {
		ops := make([]byte, 1+r.IntN(300))
		for i := range ops {
			ops[i] = byte(r.UintN(256))
		}
		runOps(t, 1+round%17, ops)
	}
}

// FuzzQueueOps drives the queue with arbitrary op sequences against the model.
func FuzzQueueOps(f *testing.F) {
	f.Add(uint8(3), []byte{0, 2, 4, 1, 1, 1, 1})
	f.Add(uint8(1), []byte{0xe0, 0x20, 1, 0xe0, 1, 1})
	f.Add(uint8(8), []byte{0, 0x10, 0x12, 0x14, 0x16, 0x18, 0xfe, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		if len(ops) > 4096 {
			ops = ops[:4096]
		}
		runOps(t, 1+int(capacity)%64, ops)
	})
}

// Criterion 3: many producers, one consumer, under the race detector;
// the consumer's pops replayed against the sequential model must match
// exactly (each pop is the model's best among the pushes completed before
// it, per Item.Horizon), and nothing is lost or duplicated.
func TestConcurrentStressAgainstModel(t *testing.T) {
	const producers, perProducer = 8, 400
	for _, capacity := range []int{1, 3, 64, 4096} {
		for seed := range uint64(3) {
			q := New[int](capacity)
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(p)))
					for i := range perProducer {
						it := Item[int]{Value: p*perProducer + i, Priority: uint8(r.IntN(5) * 60), IssuedAt: r.Int64N(50)}
						if err := q.Push(it); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			popped := make([]Item[int], 0, producers*perProducer)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					it, err := q.Pop()
					if errors.Is(err, ErrQueueShutdown) {
						return
					}
					popped = append(popped, it)
				}
			}()
			wg.Wait()
			q.Shutdown()
			<-done
			check(t, q)
			if len(popped) != producers*perProducer {
				t.Fatalf("cap %d: popped %d of %d", capacity, len(popped), producers*perProducer)
			}
			bySeq := make([]Item[int], len(popped))
			seenValue := make([]bool, len(popped))
			for _, it := range popped {
				if seenValue[it.Value] {
					t.Fatalf("value %d popped twice", it.Value)
				}
				seenValue[it.Value] = true
				bySeq[it.Seq] = it
			}
			var m model
			next := uint64(0)
			for k, it := range popped {
				for ; next < it.Horizon; next++ {
					m.push(bySeq[next])
				}
				want, _ := m.pop()
				if want.Seq != it.Seq {
					t.Fatalf("cap %d seed %d pop %d: got seq %d (prio %d, t %d), model wants seq %d (prio %d, t %d)",
						capacity, seed, k, it.Seq, it.Priority, it.IssuedAt, want.Seq, want.Priority, want.IssuedAt)
				}
			}
		}
	}
}

// TakeAll hands back everything queued, in priority order, without
// counting it as dispatched, and frees blocked producers.
func TestTakeAll(t *testing.T) {
	q := New[int](3)
	for i, p := range []uint8{10, 255, 100} {
		_ = q.Push(Item[int]{Value: i, Priority: p, SafeMode: p == 255})
	}
	blocked := make(chan error, 1)
	go func() { blocked <- q.Push(Item[int]{Value: 3, Priority: 50}) }()
	eventually(t, func() bool { return q.Metrics().ProducersWaiting() == 1 }, "producer did not block")
	got := q.TakeAll()
	if len(got) != 3 || got[0].Value != 1 || got[1].Value != 2 || got[2].Value != 0 {
		t.Fatalf("TakeAll = %v", got)
	}
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	m := q.Metrics()
	if m.Returned() != 3 || m.CommandsDispatched() != 0 || m.SafeModeCount() != 0 || m.Depth() != 1 {
		t.Fatalf("returned %d dispatched %d safe %d depth %d", m.Returned(), m.CommandsDispatched(), m.SafeModeCount(), m.Depth())
	}
	check(t, q)
}
