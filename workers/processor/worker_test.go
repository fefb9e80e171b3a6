package processor

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func runWorker(t *testing.T, b *bus.Bus) *Worker {
	w := New(b.Conn, Config{Logger: bustest.Logger(t), StatsInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return w
}

func processed(t *testing.T, b *bus.Bus) []schemas.Frame {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _ := b.JS.Stream(ctx, schemas.StreamProcessed)
	info, _ := st.Info(ctx)
	if info.State.Msgs == 0 {
		return nil
	}
	oc, _ := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	var out []schemas.Frame
	for range info.State.Msgs {
		m, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var fb schemas.FrameBatch
		if err := schemas.Decode(m.Data(), &fb); err != nil {
			t.Fatal(err)
		}
		out = append(out, fb.Frames...)
	}
	return out
}

// Two stations relay overlapping frames of the same satellites during a
// pass: every satellite frame reaches tlm.processed once, time-ordered per
// batch, and the stats in KV add up.
func TestWorkerDedupsRelayedFramesAndPublishesStats(t *testing.T) {
	b := bustest.New(t)
	w := runWorker(t, b)
	ctx := context.Background()
	mk := func(station string, seqs []uint64) []byte {
		fb := schemas.FrameBatch{StationID: station}
		for _, s := range seqs {
			fb.Frames = append(fb.Frames, schemas.Frame{StationID: station, SourceID: station, SourceKind: schemas.KindLiveUplink,
				Priority: schemas.PriorityRoutine, Sequence: s, TimestampMs: 1000 - s, SatelliteID: 7, Payload: []byte{byte(s)}})
		}
		return schemas.AppendFrameBatch(nil, &fb)
	}
	for _, m := range [][]byte{mk("gs-a", []uint64{1, 2, 3, 4}), mk("gs-b", []uint64{3, 4, 5, 6})} {
		if _, err := b.JS.Publish(ctx, schemas.WorkSubject, m); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return w.Stats().Batches.Load() == 2 }, "batches not processed")
	fs := processed(t, b)
	if len(fs) != 6 {
		t.Fatalf("%d frames processed, want 6 (2 duplicates dropped)", len(fs))
	}
	seen := map[uint64]bool{}
	for i, f := range fs {
		if seen[f.Sequence] {
			t.Fatalf("sequence %d processed twice", f.Sequence)
		}
		seen[f.Sequence] = true
		if i > 0 && fs[i-1].StationID == f.StationID && fs[i-1].TimestampMs > f.TimestampMs {
			t.Fatal("frames of a batch not in timestamp order")
		}
	}
	kv, _ := b.JS.KeyValue(ctx, schemas.BucketStats)
	bustest.Eventually(t, 5*time.Second, func() bool {
		var ps schemas.PipelineStats
		found, _ := bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return found && ps.FramesProcessed == 6 && ps.DuplicatesDropped == 2
	}, "pipeline stats not in KV")
}

// A worker that restarts after publishing a batch's outputs but before
// acking it gets the same message again; JetStream drops the republished
// outputs as duplicates (same Nats-Msg-Id), so nothing is processed twice
// downstream even though the new worker's window is empty.
func TestRedeliveryAfterRestartNoDuplicatesDownstream(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	in := courseBatch(rand.New(rand.NewPCG(1, 2)), 100, 1)
	if _, err := b.JS.Publish(ctx, schemas.WorkSubject, schemas.AppendFrameBatch(nil, in)); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.EnsureConsumer(ctx, b.JS, schemas.StreamWork, jetstream.ConsumerConfig{Durable: "crashy", AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(b.JS, 8, nil)
	defer pub.Close(ctx)
	for range 2 { // the first worker "crashes" before acking; a fresh one handles the redelivery
		w := New(b.Conn, Config{Logger: bustest.Discard})
		if _, err := w.handle(ctx, &w.lock, false, pub, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	fs := processed(t, b)
	unique := map[[2]uint64]bool{}
	for _, f := range in.Frames {
		unique[[2]uint64{uint64(f.SatelliteID), f.Sequence}] = true
	}
	if len(fs) != len(unique) {
		t.Fatalf("%d frames downstream after a redelivery, want %d", len(fs), len(unique))
	}
}

func TestWorkerTerminatesMalformedAndKeepsGoing(t *testing.T) {
	b := bustest.New(t)
	w := runWorker(t, b)
	ctx := context.Background()
	for _, m := range [][]byte{[]byte("garbage"), {0x81}, schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "x"})} {
		if _, err := b.JS.Publish(ctx, schemas.WorkSubject, m); err != nil {
			t.Fatal(err)
		}
	}
	good := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs", Frames: []schemas.Frame{{StationID: "gs", Sequence: 1, SatelliteID: 1}}})
	if _, err := b.JS.Publish(ctx, schemas.WorkSubject, good); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		return w.Stats().Processed.Load() == 1 && bus.MalformedCount("processor") >= 3
	}, "malformed not terminated or good batch not processed")
	st, _ := b.JS.Stream(ctx, schemas.StreamWork)
	bustest.Eventually(t, 5*time.Second, func() bool { info, _ := st.Info(ctx); return info.State.Msgs == 0 },
		"terminated messages left in the work queue")
}

// A restarted processor remembers what it processed in the last minutes
// (seeded from TLM_PROCESSED), so a batch redelivered with a new message
// id after a crash upstream is recognised frame by frame.
func TestRestartedWorkerRemembersRecentFrames(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	msg := schemas.AppendFrameBatch(nil, courseBatch(rand.New(rand.NewPCG(5, 5)), 50, 1))
	w1 := New(b.Conn, Config{Logger: bustest.Discard, StatsInterval: 10 * time.Millisecond})
	c1, cancel1 := context.WithCancel(ctx)
	d1 := make(chan error, 1)
	go func() { d1 <- w1.Run(c1) }()
	if _, err := b.JS.Publish(ctx, schemas.WorkSubject, msg); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return w1.Stats().Batches.Load() == 1 }, "first delivery not processed")
	cancel1()
	<-d1
	first := len(processed(t, b))

	w2 := runWorker(t, b) // a fresh process: empty window until seeded
	// The same frames again, as a new message (a redelivery upstream with a new id).
	if _, err := b.JS.Publish(ctx, schemas.WorkSubject, msg); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return w2.Stats().Batches.Load() == 1 }, "second delivery not handled")
	// The restarted worker resumes its counters from KV: processed stays
	// where the first run left it, and the frames count as duplicates.
	if got := len(processed(t, b)); got != first || w2.Stats().Processed.Load() != uint64(first) || w2.Stats().Duplicates.Load() < uint64(first) {
		t.Fatalf("after restart %d frames downstream (was %d); processed %d, duplicates %d",
			got, first, w2.Stats().Processed.Load(), w2.Stats().Duplicates.Load())
	}
}

// A routine batch waiting for the core yields to an emergency batch that
// started waiting after it.
func TestPriorityLockServesUrgentFirst(t *testing.T) {
	var l priorityLock
	l.Lock(false) // a routine batch in the core
	order := make(chan string, 2)
	go func() { l.Lock(false); order <- "routine"; l.Unlock() }()
	bustest.Eventually(t, 5*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.waiting == 1 }, "routine waiter")
	go func() { l.Lock(true); order <- "emergency"; l.Unlock() }()
	bustest.Eventually(t, 5*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.waiting == 2 }, "emergency waiter")
	l.Unlock()
	if first, second := <-order, <-order; first != "emergency" || second != "routine" {
		t.Fatalf("order %s, %s", first, second)
	}
}
