package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue/queue"
)

func TestCmdQueueDemo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := CmdQueue(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"dispatch order:", "dispatcher: queue drained, exiting", "pushed=15 dispatched=15 safe_mode=3 depth=0", "OK:"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "dispatcher: "); n != 16 { // 15 dispatches + the exit line
		t.Errorf("%d dispatcher lines:\n%s", n, s)
	}
}

// The order check catches a dispatch that overtook a waiting better command.
func TestCheckDispatchOrderCatchesInversion(t *testing.T) {
	mk := func(id string, prio uint8, seq, horizon uint64) queue.Item[schemas.Command] {
		return queue.Item[schemas.Command]{Value: schemas.Command{ID: id}, Priority: prio, Seq: seq, Horizon: horizon}
	}
	good := []queue.Item[schemas.Command]{mk("a", 10, 0, 1), mk("b", 255, 1, 3), mk("c", 50, 2, 3)}
	if err := checkDispatchOrder(good); err != nil {
		t.Fatalf("valid order rejected: %v", err)
	}
	bad := []queue.Item[schemas.Command]{mk("a", 10, 0, 2), mk("b", 255, 1, 2)}
	if err := checkDispatchOrder(bad); err == nil {
		t.Fatal("priority inversion not detected")
	}
	dup := []queue.Item[schemas.Command]{mk("a", 10, 0, 1), mk("a", 10, 0, 1)}
	if err := checkDispatchOrder(dup); err == nil {
		t.Fatal("duplicate not detected")
	}
}

func TestCmdQueueDemoCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	if err := CmdQueue(ctx, &out); err == nil {
		t.Fatalf("cancelled demo succeeded:\n%s", out.String())
	}
}
