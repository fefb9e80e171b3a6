// Package clock is the time source of the ground-station client: a small
// interface (Now, NewTimer) with the real clock and a fake one, so the
// reconnect backoff (1, 2, 4, … s capped at 30 s), the 5-minute failure
// window and the TLE refresh interval are tested in milliseconds.
//
// Socket deadlines are not driven by this clock: a read timeout is a
// property of the real connection and always uses real time.
//
// Caveats: a Fake in auto mode fires every timer at once and advances its
// time by the timer's duration; it suits code with one timer user at a
// time (a reconnect loop, a retrying fetch), not code that also runs
// periodic timers, which would then spin.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer; C delivers the fire time once.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// Sleep waits d on c, or until ctx ends (returning ctx.Err()).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Real is the system clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a manually advanced clock. Timers fire when Advance moves the
// time past their deadline (or at once in auto mode). Every requested
// duration is recorded, so a test can assert a backoff sequence.
type Fake struct {
	mu        sync.Mutex
	now       time.Time
	auto      bool
	timers    []*fakeTimer
	requested []time.Duration
	changed   chan struct{} // closed and replaced when a timer is added
}

// NewFake returns a Fake at start that moves only on Advance.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// NewAuto returns a Fake at start on which every timer fires immediately,
// advancing the time by its duration: sleeps cost nothing but still move
// Now, so windows measured with Now behave as in real time.
func NewAuto(start time.Time) *Fake {
	f := NewFake(start)
	f.auto = true
	return f
}

type fakeTimer struct {
	f        *Fake
	deadline time.Time
	c        chan time.Time
	fired    bool
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer makes a timer that fires d after the fake Now.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requested = append(f.requested, d)
	t := &fakeTimer{f: f, deadline: f.now.Add(d), c: make(chan time.Time, 1)}
	if f.auto || d <= 0 {
		if d > 0 {
			f.now = t.deadline
		}
		t.fired = true
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	close(f.changed)
	f.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if t.fired {
		return false
	}
	t.fired = true
	t.f.remove(t)
	return true
}

func (f *Fake) remove(t *fakeTimer) {
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return
		}
	}
}

// Advance moves the time forward by d and fires every timer that is due,
// earliest first.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	sort.Slice(f.timers, func(i, j int) bool { return f.timers[i].deadline.Before(f.timers[j].deadline) })
	for len(f.timers) > 0 && !f.timers[0].deadline.After(f.now) {
		t := f.timers[0]
		f.timers = f.timers[1:]
		t.fired = true
		t.c <- t.deadline
	}
}

// Pending returns the time left on every pending timer, shortest first.
func (f *Fake) Pending() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]time.Duration, 0, len(f.timers))
	for _, t := range f.timers {
		out = append(out, t.deadline.Sub(f.now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// WaitPending blocks until at least n timers are pending or ctx ends, and
// returns the pending durations.
func (f *Fake) WaitPending(ctx context.Context, n int) ([]time.Duration, error) {
	for {
		f.mu.Lock()
		have, ch := len(f.timers), f.changed
		f.mu.Unlock()
		if have >= n {
			return f.Pending(), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Requested returns every duration passed to NewTimer so far, in order.
func (f *Fake) Requested() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.requested...)
}
