package queue

import (
	"container/heap"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkPushPop measures hand-off throughput: P producer goroutines push
// b.N items in total (mixed priorities, increasing IssuedAt) into a queue of
// capacity 1024 while one consumer pops them all. "items/s" counts items
// through the queue (one push and one pop each); "ops/s" counts pushes
// plus pops.
func BenchmarkPushPop(b *testing.B) {
	for _, producers := range []int{1, 3, 8} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			q := New[int](1024)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range producers {
				n := b.N / producers
				if p == 0 {
					n += b.N % producers
				}
				wg.Go(func() {
					for i := range n {
						if err := q.Push(Item[int]{Value: i, Priority: uint8(i % 5 * 50), IssuedAt: int64(i)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			for range b.N {
				if _, err := q.Pop(); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "items/s")
			b.ReportMetric(2*float64(b.N)/el, "ops/s")
		})
	}
}

// BenchmarkPushPopUncontended is one goroutine pushing a batch of 64 and
// popping it: the cost of the operations without any hand-off.
func BenchmarkPushPopUncontended(b *testing.B) {
	q := New[int](1024)
	b.ReportAllocs()
	start := time.Now()
	for i := 0; i < b.N; i += 64 {
		for j := range 64 {
			_ = q.Push(Item[int]{Value: j, Priority: uint8(j % 5 * 50), IssuedAt: int64(i + j)})
		}
		for range 64 {
			_, _ = q.Pop()
		}
	}
	el := time.Since(start).Seconds()
	n := float64((b.N + 63) / 64 * 64)
	b.ReportMetric(n/el, "items/s")
	b.ReportMetric(2*n/el, "ops/s")
}

// heapQueue is the course's reference design (a binary heap under a mutex
// with two condition variables), kept here only as a benchmark baseline
// for the bucket queue.
type heapQueue struct {
	mu               sync.Mutex
	notEmpty, notFul sync.Cond
	items            heapItems
	capacity         int
	seq              uint64
}

type heapItems []Item[int]

func (h heapItems) Len() int { return len(h) }
func (h heapItems) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if a.IssuedAt != b.IssuedAt {
		return a.IssuedAt < b.IssuedAt
	}
	return a.Seq < b.Seq
}
func (h heapItems) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heapItems) Push(x any)   { *h = append(*h, x.(Item[int])) }
func (h *heapItems) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newHeapQueue(capacity int) *heapQueue {
	q := &heapQueue{capacity: capacity, items: make(heapItems, 0, capacity)}
	q.notEmpty.L, q.notFul.L = &q.mu, &q.mu
	return q
}

func (q *heapQueue) push(it Item[int]) {
	q.mu.Lock()
	for len(q.items) == q.capacity {
		q.notFul.Wait()
	}
	it.Seq = q.seq
	q.seq++
	heap.Push(&q.items, it)
	q.mu.Unlock()
	q.notEmpty.Signal()
}

func (q *heapQueue) pop() Item[int] {
	q.mu.Lock()
	for len(q.items) == 0 {
		q.notEmpty.Wait()
	}
	it := heap.Pop(&q.items).(Item[int])
	q.mu.Unlock()
	q.notFul.Signal()
	return it
}

// BenchmarkHeapBaseline is BenchmarkPushPop against heapQueue.
func BenchmarkHeapBaseline(b *testing.B) {
	for _, producers := range []int{1, 3, 8} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			q := newHeapQueue(1024)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range producers {
				n := b.N / producers
				if p == 0 {
					n += b.N % producers
				}
				wg.Go(func() {
					for i := range n {
						q.push(Item[int]{Value: i, Priority: uint8(i % 5 * 50), IssuedAt: int64(i)})
					}
				})
			}
			for range b.N {
				q.pop()
			}
			wg.Wait()
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "items/s")
			b.ReportMetric(2*float64(b.N)/el, "ops/s")
		})
	}
}
