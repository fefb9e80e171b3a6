package fanin_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/fanin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func batch(seq uint64) []byte {
	return schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-1",
		Frames: []schemas.Frame{{StationID: "gs-1", SourceID: "gs-1", Sequence: seq, SatelliteID: 1}}})
}

func seqOf(t *testing.T, data []byte) uint64 {
	var fb schemas.FrameBatch
	if err := schemas.Decode(data, &fb); err != nil {
		t.Fatal(err)
	}
	return fb.Frames[0].Sequence
}

// Criteria 1 and 3: the processor is saturated (TLM_WORK full) with a
// routine backlog behind it; emergency batches that arrive later are handed
// on before every routine batch still queued, and nothing is dropped.
func TestEmergencyOvertakesRoutineBacklogUnderBackpressure(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	var order []uint64 // sequences handed on: routine 1..100, emergency 1001..1005
	f := fanin.New(bustest.Conn(t, b), fanin.Config{Logger: bustest.Logger(t), Observe: func(_ schemas.Priority, data []byte) {
		mu.Lock()
		order = append(order, seqOf(t, data))
		mu.Unlock()
	}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-f.Ready()

	for i := range 100 {
		if _, err := b.JS.Publish(ctx, "tlm.routed.routine.gs-1", batch(uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	work, _ := b.JS.Stream(ctx, schemas.StreamWork)
	bustest.Eventually(t, 10*time.Second, func() bool { info, _ := work.Info(ctx); return info.State.Msgs == 64 },
		"hand-off never filled (the processor is not running)")
	mu.Lock()
	handedBefore := len(order)
	mu.Unlock()
	for i := range 5 {
		if _, err := b.JS.Publish(ctx, "tlm.routed.emergency.gs-1", batch(uint64(1001+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Backpressure, not loss: TLM_ROUTED keeps the backlog.
	routed, _ := b.JS.Stream(ctx, schemas.StreamRouted)
	if info, _ := routed.Info(ctx); info.State.Msgs < 30 {
		t.Fatalf("routed backlog %d: batches were dropped instead of waiting", info.State.Msgs)
	}
	// The processor catches up: drain the hand-off.
	cons, _ := bus.EnsureConsumer(ctx, b.JS, schemas.StreamWork, jetstream.ConsumerConfig{Durable: "test-processor"})
	got := map[uint64]int{}
	for len(got) < 105 {
		batch, err := cons.Fetch(32, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got[seqOf(t, m.Data())]++
			_ = m.Ack()
		}
	}
	for seq, n := range got {
		if n != 1 {
			t.Fatalf("batch %d handed on %d times", seq, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	routineBetween := 0
	emergencySeen := 0
	for _, s := range order[handedBefore:] {
		if s > 1000 {
			emergencySeen++
			if emergencySeen == 5 {
				break
			}
			continue
		}
		routineBetween++
	}
	// At most the one routine batch that was mid-hand-off when the
	// emergencies arrived may go before them.
	if emergencySeen != 5 || routineBetween > 1 {
		t.Fatalf("after the emergencies arrived, %d routine batches were handed on before all 5 emergency ones (order %v)",
			routineBetween, order[handedBefore:min(len(order), handedBefore+10)])
	}
}

func TestMalformedRoutedBatchTerminated(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	f := fanin.New(bustest.Conn(t, b), fanin.Config{Logger: bustest.Logger(t)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-f.Ready()
	_, _ = b.JS.Publish(ctx, "tlm.routed.routine.gs-1", []byte("junk"))
	_, _ = b.JS.Publish(ctx, "tlm.routed.routine.gs-1", batch(7))
	bustest.Eventually(t, 10*time.Second, func() bool {
		_, r := f.Handed()
		return r == 1 && bus.MalformedCount("fanin") >= 1
	}, "malformed not terminated or good batch not handed on")
}
