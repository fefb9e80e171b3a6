package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue/queue"
)

// CmdQueue is the course's "Ground Station Command Queue" demonstration:
// three producers (ground-station connections) push five commands each
// (SAFE_MODE, ABORT_PASS, REPOINT, STATUS_REQUEST, HOUSEKEEPING, producer
// gs-N pausing N×5 ms before each), one dispatcher pops them taking 10 ms
// per command, a monitor samples the lock-free metrics every 20 ms, and the
// queue is shut down once the producers finish. It prints the dispatch
// order and returns an error if a command was dispatched while a
// higher-priority (or older, same-priority) one was waiting, if anything
// was lost or duplicated, or if the drain did not end cleanly.
func CmdQueue(ctx context.Context, w io.Writer) error {
	q := queue.New[schemas.Command](20)
	var out sync.Mutex // keeps lines whole
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(w, format+"\n", args...)
		out.Unlock()
	}
	say("command queue: capacity %d, 3 producers x 5 commands, dispatcher 10 ms/command, monitor every 20 ms", q.Cap())

	kinds := []schemas.CommandKind{schemas.CmdSafeMode, schemas.CmdAbortPass, schemas.CmdRepoint, schemas.CmdStatusRequest, schemas.CmdHousekeeping}
	var producers sync.WaitGroup
	for gs := range 3 {
		producers.Go(func() {
			for i, k := range kinds {
				if !sleep(ctx, time.Duration(gs)*5*time.Millisecond) {
					return
				}
				c := schemas.Command{ID: fmt.Sprintf("gs-%d/%d", gs, i), StationID: fmt.Sprintf("gs-%d", gs), Kind: k, IssuedAtNs: time.Now().UnixNano()}
				if k == schemas.CmdRepoint {
					az, el := 180.0, 45.0
					c.Azimuth, c.Elevation = &az, &el
				}
				p := c.EffectivePriority()
				if err := q.PushCtx(ctx, queue.Item[schemas.Command]{Value: c, Priority: p, IssuedAt: c.IssuedAtNs, SafeMode: k == schemas.CmdSafeMode}); err != nil {
					say("gs-%d: push rejected: %v", gs, err)
					return
				}
				say("gs-%d: pushed %-14s priority %3d", gs, k, p)
			}
		})
	}

	var popped []queue.Item[schemas.Command]
	consumerDone := make(chan error, 1)
	go func() {
		for {
			it, err := q.PopCtx(ctx)
			if errors.Is(err, queue.ErrQueueShutdown) {
				say("dispatcher: queue drained, exiting")
				consumerDone <- nil
				return
			}
			if err != nil {
				consumerDone <- err
				return
			}
			popped = append(popped, it)
			say("dispatcher: %-14s priority %3d  from %s", it.Value.Kind, it.Priority, it.Value.StationID)
			sleep(ctx, 10*time.Millisecond) // the session controller's work
		}
	}()

	monitorStop := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		m := q.Metrics()
		for {
			select {
			case <-monitorStop:
				return
			case <-t.C:
				say("monitor: pushed=%d dispatched=%d safe_mode=%d depth=%d", m.CommandsPushed(), m.CommandsDispatched(), m.SafeModeCount(), m.Depth())
			}
		}
	}()

	producers.Wait()
	q.Shutdown()
	say("producers finished; queue shut down")
	err := <-consumerDone
	close(monitorStop)
	<-monitorDone
	if err != nil {
		return fmt.Errorf("cmdqueue demo: dispatcher: %w", err)
	}

	m := q.Metrics()
	say("final: pushed=%d dispatched=%d safe_mode=%d depth=%d; dispatcher woke %d times for %d commands",
		m.CommandsPushed(), m.CommandsDispatched(), m.SafeModeCount(), m.Depth(), m.PopWakeups(), len(popped))
	say("dispatch order:")
	for i, it := range popped {
		say("  %2d. %-14s priority %3d  %s", i+1, it.Value.Kind, it.Priority, it.Value.ID)
	}
	if err := checkDispatchOrder(popped); err != nil {
		return fmt.Errorf("cmdqueue demo: %w", err)
	}
	if len(popped) != 15 || m.CommandsPushed() != 15 || m.CommandsDispatched() != 15 || m.SafeModeCount() != 3 || m.Depth() != 0 {
		return fmt.Errorf("cmdqueue demo: drain incomplete: popped %d, pushed %d, dispatched %d, safe_mode %d, depth %d",
			len(popped), m.CommandsPushed(), m.CommandsDispatched(), m.SafeModeCount(), m.Depth())
	}
	if _, err := q.Pop(); !errors.Is(err, queue.ErrQueueShutdown) {
		return fmt.Errorf("cmdqueue demo: pop after drain returned %v, want ErrQueueShutdown", err)
	}
	if err := q.Push(queue.Item[schemas.Command]{}); !errors.Is(err, queue.ErrQueueShutdown) {
		return fmt.Errorf("cmdqueue demo: push after shutdown returned %v, want ErrQueueShutdown", err)
	}
	say("OK: every command dispatched once, each the highest-priority, oldest one waiting at its turn")
	return nil
}

// checkDispatchOrder verifies that no pop took an item while a better one
// (higher priority, or same priority and older) was already queued: for
// pop k, every item pushed before it (Seq < Horizon) and popped later must
// rank after it. It also checks each command was popped once.
func checkDispatchOrder(popped []queue.Item[schemas.Command]) error {
	seen := map[string]bool{}
	for _, it := range popped {
		if seen[it.Value.ID] {
			return fmt.Errorf("command %s dispatched twice", it.Value.ID)
		}
		seen[it.Value.ID] = true
	}
	for k, it := range popped {
		for _, later := range popped[k+1:] {
			if later.Seq >= it.Horizon {
				continue // not yet queued when it was popped
			}
			if later.Priority > it.Priority || later.Priority == it.Priority &&
				(later.IssuedAt < it.IssuedAt || later.IssuedAt == it.IssuedAt && later.Seq < it.Seq) {
				return fmt.Errorf("dispatch %d took %s (priority %d) while %s (priority %d) was waiting",
					k+1, it.Value.ID, it.Priority, later.Value.ID, later.Priority)
			}
		}
	}
	return nil
}

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
