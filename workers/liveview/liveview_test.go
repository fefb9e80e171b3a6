package liveview_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/liveview"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

// Criterion 7: a view that cannot keep up misses messages, says so, and
// keeps receiving afterwards.
func TestSlowViewReportsMissedAndContinues(t *testing.T) {
	b := bustest.New(t)
	var slow atomic.Bool
	slow.Store(true)
	release := make(chan struct{})
	v := liveview.New(bustest.Conn(t, b), liveview.Config{PendingMsgs: 16, Logger: bustest.Logger(t), Slow: func() {
		if slow.Load() {
			<-release // stuck until the publisher is done
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-v.Ready()
	msg := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs", Frames: []schemas.Frame{{Sequence: 1}}})
	pub := bustest.Conn(t, b)
	for range 500 {
		_ = pub.Publish("tlm.processed.gs", msg)
	}
	_ = pub.Flush()
	bustest.Eventually(t, 10*time.Second, func() bool { _, _, missed := v.Seen(); return missed > 0 }, "missed messages not reported")
	slow.Store(false)
	close(release)
	_, before, _ := v.Seen()
	bustest.Eventually(t, 10*time.Second, func() bool {
		_ = pub.Publish("tlm.processed.gs", msg)
		_, f, _ := v.Seen()
		return f > before+5
	}, "view stopped receiving after falling behind")
}
