package fanin_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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
	// MaxMerge 1: one routed batch per hand-off, so the hand-off's 64 slots
	// fill with the backlog (TestMergesWaitingBatches covers merging).
	f := fanin.New(bustest.Conn(t, b), fanin.Config{MaxMerge: 1, Logger: bustest.Logger(t), Observe: func(_ schemas.Priority, data []byte) {
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
	// The emergencies reach the hand-off's emergency lane while the routine
	// lane is still full and its backlog still waits: a processor taking
	// that lane first processes them before every routine batch queued
	// before they arrived.
	bustest.Eventually(t, 10*time.Second, func() bool {
		info, err := work.Info(ctx, jetstream.WithSubjectFilter(schemas.WorkEmergency))
		return err == nil && info.State.Subjects[schemas.WorkEmergency] == 5
	}, "the emergency batches did not get past the routine backlog into the hand-off")
	if info, _ := work.Info(ctx, jetstream.WithSubjectFilter(schemas.WorkSubject)); info.State.Subjects[schemas.WorkSubject] != 64 {
		t.Fatalf("routine lane holds %d, want 64 (still full)", info.State.Subjects[schemas.WorkSubject])
	}
	// Backpressure, not loss: TLM_ROUTED keeps the backlog.
	routed, _ := b.JS.Stream(ctx, schemas.StreamRouted)
	if info, _ := routed.Info(ctx); info.State.Msgs < 30 {
		t.Fatalf("routed backlog %d: batches were dropped instead of waiting", info.State.Msgs)
	}
	// The processor catches up, emergency lane first: drain the hand-off.
	drain := func(name, subject string, n int) []uint64 {
		cons, err := bus.EnsureConsumer(ctx, b.JS, schemas.StreamWork, jetstream.ConsumerConfig{Durable: name, FilterSubject: subject})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for len(got) < n {
			batch, err := cons.Fetch(32, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				got = append(got, seqOf(t, m.Data()))
				_ = m.Ack()
			}
		}
		return got
	}
	first := drain("test-processor-emergency", schemas.WorkEmergency, 5)
	if !slices.Equal(first, []uint64{1001, 1002, 1003, 1004, 1005}) {
		t.Fatalf("emergency lane: %v", first)
	}
	got := map[uint64]int{}
	for _, seq := range drain("test-processor", schemas.WorkSubject, 100) {
		got[seq]++
	}
	for seq := uint64(1); seq <= 100; seq++ {
		if got[seq] != 1 {
			t.Fatalf("routine batch %d handed on %d times", seq, got[seq])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 105 {
		t.Fatalf("handed on %d batches (%d before the emergencies), want 105", len(order), handedBefore)
	}
	// A full lane was seen as backpressure (counted), not as a failure.
	if n := counter(t, "meridian_fanin_handoff_full_total"); n == 0 {
		t.Fatal("the full hand-off was never counted as backpressure")
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

// Routed batches that wait are merged into few hand-offs; every frame is
// handed on exactly once, and a hand-off never mixes priorities: emergency
// frames travel only on the emergency lane.
func TestMergesWaitingBatches(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	for i := range 500 { // 500 routine batches of 2 frames, queued before the fan-in starts
		fb := schemas.FrameBatch{StationID: fmt.Sprintf("gs-%d", i%12)}
		for j := range 2 {
			fb.Frames = append(fb.Frames, schemas.Frame{StationID: fb.StationID, SourceID: fb.StationID, Sequence: uint64(2*i + j + 1), SatelliteID: 1})
		}
		if _, err := b.JS.Publish(ctx, "tlm.routed.routine."+fb.StationID, schemas.AppendFrameBatch(nil, &fb)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := b.JS.Publish(ctx, "tlm.routed.emergency.gs-1", batch(uint64(5001+i))); err != nil {
			t.Fatal(err)
		}
	}
	f := fanin.New(bustest.Conn(t, b), fanin.Config{Logger: bustest.Logger(t)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	defer func() { cancel(); <-done }()

	cons, _ := bus.EnsureConsumer(ctx, b.JS, schemas.StreamWork, jetstream.ConsumerConfig{Durable: "test-processor"})
	seen := map[uint64]int{}
	handOffs := 0
	for len(seen) < 1003 {
		msgs, err := cons.Fetch(64, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			handOffs++
			var fb schemas.FrameBatch
			if err := schemas.Decode(m.Data(), &fb); err != nil {
				t.Fatal(err)
			}
			for _, fr := range fb.Frames {
				seen[fr.Sequence]++
				if emergency := fr.Sequence > 5000; emergency != (m.Subject() == schemas.WorkEmergency) {
					t.Fatalf("frame %d on %s: priorities mixed", fr.Sequence, m.Subject())
				}
			}
			_ = m.Ack()
		}
		if got == 0 {
			t.Fatalf("no hand-off within 5 s; %d of 1003 frames seen", len(seen))
		}
	}
	for seq, n := range seen {
		if n != 1 {
			t.Fatalf("frame %d handed on %d times", seq, n)
		}
	}
	if handOffs > 503/4 { // at least 4 routed batches per hand-off on average
		t.Fatalf("%d hand-offs for 503 waiting batches: they were not merged", handOffs)
	}
	if e, r := f.Handed(); e != 3 || r != 500 {
		t.Fatalf("handed %d emergency, %d routine routed batches", e, r)
	}
}

// counter reads a counter from the default Prometheus registry.
func counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			total := 0.0
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			return total
		}
	}
	return 0
}
