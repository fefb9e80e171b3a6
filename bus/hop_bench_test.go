package bus_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

// BenchmarkJetStreamHop measures one pipeline hop with no stage logic:
// FrameBatch messages of the size the router publishes (256 KiB of
// 371-byte frames) published through a Publisher on an in-process
// connection into a work-queue stream, pulled on a second connection and
// acked. cpu-ns/frame is what each of the pipeline's four hops (TLM_INGEST,
// TLM_ROUTED, TLM_WORK, TLM_PROCESSED) costs per frame before any stage
// does its own work; frames/s is not a bound on the pipeline's rate, since
// one hop alone does not keep both cores busy. The memory sub-benchmark
// shows what the file store adds.
func BenchmarkJetStreamHop(b *testing.B) {
	for _, st := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		b.Run(st.String(), func(b *testing.B) { hopBench(b, st) })
	}
}

func hopBench(b *testing.B, storage jetstream.StorageType) {
	bs := bustest.New(b, func(c *bus.Config) { c.Logger = bustest.Discard })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pubNC, err := bs.Connect("hop-pub")
	if err != nil {
		b.Fatal(err)
	}
	defer pubNC.Close()
	subNC, err := bs.Connect("hop-sub")
	if err != nil {
		b.Fatal(err)
	}
	defer subNC.Close()
	js, _ := bus.NewJetStream(pubNC)
	jsSub, _ := bus.NewJetStream(subNC)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HOP", Subjects: []string{"hop.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: storage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	cons, err := jsSub.CreateOrUpdateConsumer(ctx, "HOP", jetstream.ConsumerConfig{Durable: "hop",
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256})
	if err != nil {
		b.Fatal(err)
	}

	// One message: as many frames as fit in 256 KiB, shaped like the
	// gateway's (the frame map's keys, short ids, a 232-byte payload).
	fb := schemas.FrameBatch{StationID: "gs-01"}
	payload := make([]byte, 232)
	var data []byte
	for len(data) < 256<<10-512 {
		fb.Frames = append(fb.Frames, schemas.Frame{StationID: "gs-01", SourceID: "gs-01", SourceKind: schemas.KindLiveUplink,
			Priority: schemas.PriorityRoutine, Sequence: uint64(len(fb.Frames) + 1), TimestampMs: uint64(time.Now().UnixMilli()),
			SatelliteID: 7, Payload: payload})
		data = schemas.AppendFrameBatch(data[:0], &fb)
	}
	perMsg := len(fb.Frames)
	msgs := (b.N + perMsg - 1) / perMsg
	b.SetBytes(int64(len(data) / perMsg)) // per frame: b.N counts frames

	var got atomic.Int64
	var warm atomic.Bool
	done := make(chan struct{})
	var once sync.Once
	cctx, stop := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- bus.ConsumeRaw(cctx, cons, "hop", func(_ context.Context, m jetstream.Msg) error {
			if m.Subject() == "hop.warm-up" {
				warm.Store(true)
				return nil
			}
			if got.Add(1) == int64(msgs) {
				once.Do(func() { close(done) })
			}
			return nil
		}, bus.ConsumeOptions{PullMaxBytes: 8 << 20, Logger: bustest.Discard})
	}()
	defer func() { stop(); <-consumed }()

	pub := bus.NewPublisher(js, 256, bustest.Discard)
	defer func() { _ = pub.Close(ctx) }() // on a failed run; Close is idempotent
	// Warm up (stream, consumer, pull) outside the measurement.
	if _, err := pub.Publish(ctx, bus.NewMsg("hop.warm-up", data, "hop:warm-up")); err != nil {
		b.Fatal(err)
	}
	bustest.Eventually(b, time.Minute, warm.Load, "warm-up message not consumed")
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), bustest.CPUTime()
	for i := range msgs {
		if err := pub.PublishAsync(ctx, bus.NewMsg("hop.gs-01", data, "hop:"+strconv.Itoa(i)), nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Close(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("consumed %d of %d messages", got.Load(), msgs)
	}
	b.StopTimer()
	frames := float64(msgs * perMsg)
	b.ReportMetric(frames/time.Since(start).Seconds(), "frames/s")
	b.ReportMetric(float64((bustest.CPUTime()-cpu0).Nanoseconds())/frames, "cpu-ns/frame")
}
