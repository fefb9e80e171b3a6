package clock_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	f := clock.NewFake(t0)
	a, b, c := f.NewTimer(3*time.Second), f.NewTimer(time.Second), f.NewTimer(10*time.Second)
	if got := f.Pending(); !slices.Equal(got, []time.Duration{time.Second, 3 * time.Second, 10 * time.Second}) {
		t.Fatalf("pending %v", got)
	}
	f.Advance(5 * time.Second)
	if got := <-b.C(); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("b fired at %v", got)
	}
	if got := <-a.C(); !got.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("a fired at %v", got)
	}
	select {
	case <-c.C():
		t.Fatal("c fired early")
	default:
	}
	if !c.Stop() || c.Stop() || a.Stop() {
		t.Fatal("Stop results wrong")
	}
	if len(f.Pending()) != 0 || !f.Now().Equal(t0.Add(5*time.Second)) {
		t.Fatalf("pending %v now %v", f.Pending(), f.Now())
	}
}

func TestAutoAdvancesOnEveryTimer(t *testing.T) {
	f := clock.NewAuto(t0)
	for _, d := range []time.Duration{time.Second, 2 * time.Second} {
		if err := clock.Sleep(context.Background(), f, d); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Now().Equal(t0.Add(3*time.Second)) || !slices.Equal(f.Requested(), []time.Duration{time.Second, 2 * time.Second}) {
		t.Fatalf("now %v requested %v", f.Now(), f.Requested())
	}
}

func TestWaitPendingAndSleepCancel(t *testing.T) {
	f := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(ctx, f, time.Minute) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if p, err := f.WaitPending(wctx, 1); err != nil || p[0] != time.Minute {
		t.Fatalf("pending %v err %v", p, err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled sleep returned nil")
	}
	if len(f.Pending()) != 0 {
		t.Fatal("cancelled sleep left its timer pending")
	}
	if err := clock.Sleep(context.Background(), clock.Real, time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
