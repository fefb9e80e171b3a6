package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestProvisionCreatesContract(t *testing.T) {
	b := bustest.New(t)
	if err := b.Ready(ctx(t)); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	lister := b.JS.ListStreams(ctx(t))
	for info := range lister.Info() {
		names[info.Config.Name] = true
	}
	for _, want := range []string{"TLM_INGEST", "TLM_REPLAY", "TLM_ROUTED", "TLM_REJECTED", "TLM_WORK", "TLM_PROCESSED", "CMD", "CMD_DISPATCH", "SDA", "TLE"} {
		if !names[want] {
			t.Errorf("stream %s missing (have %v)", want, names)
		}
	}
	for _, kv := range []string{schemas.BucketStats, schemas.BucketSessions, schemas.BucketSources} {
		if _, err := b.JS.KeyValue(ctx(t), kv); err != nil {
			t.Errorf("KV %s: %v", kv, err)
		}
	}
	work, err := b.JS.Stream(ctx(t), schemas.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	if c := work.CachedInfo().Config; c.MaxMsgsPerSubject != 64 || !c.DiscardNewPerSubject || c.Discard != jetstream.DiscardNew ||
		c.Retention != jetstream.WorkQueuePolicy || len(c.Subjects) != 2 {
		t.Errorf("TLM_WORK is not a bounded work queue: %+v", c)
	}
}

func TestProvisionIsIdempotentAndConcurrent(t *testing.T) {
	b := bustest.New(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc := bustest.Conn(t, b)
			js, _ := bus.NewJetStream(nc)
			errs <- bus.Provision(ctx(t), js, bus.ProvisionOptions{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent provision: %v", err)
		}
	}
}

func TestDataDirLockRefusesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	b := bustest.New(t, func(c *bus.Config) { c.DataDir = dir })
	_, err := bus.Open(ctx(t), bus.Config{DataDir: dir, ListenAddr: "127.0.0.1:0", Logger: bustest.Discard})
	if !errors.Is(err, bus.ErrDataDirLocked) {
		t.Fatalf("second open on the same data dir: %v, want ErrDataDirLocked", err)
	}
	if err := b.Ready(ctx(t)); err != nil {
		t.Fatalf("first bus damaged by the refused second open: %v", err)
	}
}

func TestRestartKeepsMessages(t *testing.T) {
	dir := t.TempDir()
	cfg := bus.Config{DataDir: dir, ListenAddr: "127.0.0.1:0", Logger: bustest.Discard}
	b, err := bus.Open(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewPublisher(b.JS, 16, nil)
	for i := range 10 {
		if _, err := p.Publish(ctx(t), bus.NewMsg("tlm.ingest.gs-1", []byte{byte(i)}, fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b2, err := bus.Open(ctx(t), cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer b2.Close()
	s, err := b2.JS.Stream(ctx(t), schemas.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx(t))
	if info.State.Msgs != 10 {
		t.Fatalf("after restart TLM_INGEST holds %d messages, want 10", info.State.Msgs)
	}
}

func TestPublisherDeduplicatesRetries(t *testing.T) {
	b := bustest.New(t)
	p := bus.NewPublisher(b.JS, 4, nil)
	defer p.Close(ctx(t))
	var acks, dups atomic.Int64
	for i := range 50 {
		id := fmt.Sprint("batch-", i%25) // every id twice
		err := p.PublishAsync(ctx(t), bus.NewMsg("tlm.ingest.gs-dup", []byte("x"), id), func(a *jetstream.PubAck, err error) {
			if err != nil {
				t.Error(err)
				return
			}
			acks.Add(1)
			if a.Duplicate {
				dups.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.InFlight() > 4 {
			t.Fatalf("window exceeded: %d in flight", p.InFlight())
		}
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if acks.Load() != 50 || dups.Load() != 25 {
		t.Fatalf("acks %d dups %d, want 50 and 25", acks.Load(), dups.Load())
	}
	s, _ := b.JS.Stream(ctx(t), schemas.StreamIngest)
	info, _ := s.Info(ctx(t))
	if info.State.Msgs != 25 {
		t.Fatalf("stream holds %d, want 25", info.State.Msgs)
	}
	if err := p.PublishAsync(ctx(t), bus.NewMsg("tlm.ingest.x", []byte("x"), ""), nil); !errors.Is(err, bus.ErrPublisherClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// When a stream's ingest queue is full the server sheds publishes with 429
// "too many requests"; the Publisher backs off and retries them, so every
// message is stored once and no publish fails. The embedded server here
// queues at most 2 messages a stream has not stored yet.
func TestPublisherRetriesWhenTheServerShedsLoad(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte("jetstream { max_buffered_msgs: 2 }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t, func(c *bus.Config) { c.ServerConfig = conf })
	before := publishOutcomes(t)
	p := bus.NewPublisher(b.JS, 256, nil)
	const n = 600
	var acks atomic.Int64
	body := make([]byte, 4096)
	for i := range n {
		err := p.PublishAsync(ctx(t), bus.NewMsg("tlm.ingest.gs-shed", body, fmt.Sprint("shed-", i)), func(_ *jetstream.PubAck, err error) {
			if err != nil {
				t.Errorf("publish failed: %v", err)
				return
			}
			acks.Add(1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	after := publishOutcomes(t)
	if after["retried"] == before["retried"] {
		t.Fatal("the server shed nothing: the test did not fill the ingest queue")
	}
	s, err := b.JS.Stream(ctx(t), schemas.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if acks.Load() != n || info.State.Msgs != n {
		t.Fatalf("%d acked, %d stored, want %d", acks.Load(), info.State.Msgs, n)
	}
}

// The server's 429 is recognised, by its error code, and nothing else is.
func TestIsTooManyRequests(t *testing.T) {
	shed := &jetstream.APIError{Code: 429, ErrorCode: 10167, Description: "too many requests"}
	if !bus.IsTooManyRequests(fmt.Errorf("publish: %w", shed)) {
		t.Fatal("a wrapped 429 (err_code 10167) not recognised")
	}
	for _, err := range []error{nil, errors.New("too many requests"), &jetstream.APIError{Code: 503, ErrorCode: 10077}} {
		if bus.IsTooManyRequests(err) {
			t.Fatalf("%v taken for load shedding", err)
		}
	}
}

func publishOutcomes(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "meridian_bus_publish_total" {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// A FrameBatch published by an independent connection is stored and decodes
// field by field; malformed messages are terminated and counted, and the
// consumer keeps going.
func TestConsumeDecodesAndTerminatesMalformed(t *testing.T) {
	b := bustest.New(t)
	nc := bustest.Conn(t, b)
	js, _ := bus.NewJetStream(nc)
	good := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-test", Frames: []schemas.Frame{{StationID: "gs-test", Sequence: 1, Payload: []byte("ok")}}})
	for _, data := range [][]byte{[]byte("not msgpack"), good, {0x81, 0xa1}, good} {
		if _, err := js.Publish(ctx(t), "tlm.ingest.gs-test", data); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := bus.EnsureConsumer(ctx(t), b.JS, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: "test-malformed", AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	malformed0 := bus.MalformedCount("test-malformed") // process-wide: other runs (-count) counted too
	cctx, cancel := context.WithCancel(ctx(t))
	done := make(chan error)
	go func() {
		done <- bus.Consume(cctx, cons, "test-malformed", func(_ context.Context, _ jetstream.Msg, fb *schemas.FrameBatch) error {
			if fb.StationID != "gs-test" || fb.Frames[0].Sequence != 1 || string(fb.Frames[0].Payload) != "ok" {
				t.Errorf("decoded %+v", fb)
			}
			got.Add(1)
			return nil
		}, bus.ConsumeOptions{Logger: bustest.Discard})
	}()
	bustest.Eventually(t, 10*time.Second, func() bool {
		return got.Load() == 2 && bus.MalformedCount("test-malformed")-malformed0 == 2
	}, "want 2 good and 2 malformed messages handled")
	if n := bus.MalformedCount("test-malformed") - malformed0; got.Load() != 2 || n != 2 {
		t.Fatalf("handled %d good and %v malformed, want 2 and 2", got.Load(), n)
	}
	bustest.Eventually(t, 10*time.Second, func() bool {
		info, err := cons.Info(ctx(t))
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, "terminated messages still pending")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Two writers owning different fields of one KV value never erase each
// other's updates.
func TestKVMergeConcurrentWriters(t *testing.T) {
	b := bustest.New(t)
	kv, _ := b.JS.KeyValue(ctx(t), schemas.BucketStats)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				err := bus.KVMerge(ctx(t), kv, "merge-test", func(p *schemas.PipelineStats) {
					if w == 0 {
						p.FramesRouted = uint64(i + 1)
					} else {
						p.FramesProcessed = uint64(i + 1)
					}
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var got schemas.PipelineStats
	if _, err := bus.KVGet(ctx(t), kv, "merge-test", &got); err != nil || got.FramesRouted != 50 || got.FramesProcessed != 50 {
		t.Fatalf("merged value %+v: %v", got, err)
	}
}

// With Concurrency, handlers overlap (here: each waits until a second one
// runs, which one-at-a-time would never allow), every message is acked
// once, and shutdown waits for running handlers.
func TestConsumeRawConcurrency(t *testing.T) {
	b := bustest.New(t)
	js, _ := bus.NewJetStream(bustest.Conn(t, b))
	for i := range 40 {
		if _, err := js.Publish(ctx(t), "tlm.ingest.gs-conc", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := bus.EnsureConsumer(ctx(t), b.JS, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: "test-conc", AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, maxInFlight, handled atomic.Int64
	pair := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx(t))
	done := make(chan error)
	go func() {
		done <- bus.ConsumeRaw(cctx, cons, "test-conc", func(context.Context, jetstream.Msg) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			if handled.Load() == 0 { // the first two meet: proof they run at once
				select {
				case pair <- struct{}{}:
				case <-pair:
				case <-time.After(10 * time.Second):
				}
			}
			handled.Add(1)
			return nil
		}, bus.ConsumeOptions{Logger: bustest.Discard, Concurrency: 4})
	}()
	bustest.Eventually(t, 20*time.Second, func() bool {
		info, err := cons.Info(ctx(t))
		return err == nil && info.AckFloor.Stream == 40 && info.NumAckPending == 0
	}, "not every message was acked")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if handled.Load() != 40 || maxInFlight.Load() < 2 || maxInFlight.Load() > 4 {
		t.Fatalf("handled %d, at most %d at once (want 2..4)", handled.Load(), maxInFlight.Load())
	}
}

// A retention shorter than the 2-minute duplicate window (a soak that
// wants the store at its steady state) provisions: the window shrinks to
// the retention, which the server requires.
func TestProvisionShortRetention(t *testing.T) {
	b := bustest.New(t, func(c *bus.Config) { c.Provision = bus.ProvisionOptions{Retention: 30 * time.Second} })
	st, err := b.JS.Stream(ctx(t), schemas.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 30*time.Second || info.Config.Duplicates != 30*time.Second {
		t.Fatalf("TLM_INGEST max age %v, duplicate window %v; want 30s and 30s", info.Config.MaxAge, info.Config.Duplicates)
	}
	// The work queues keep a backlog however old it gets.
	for _, name := range []string{schemas.StreamRouted, schemas.StreamWork} {
		st, err := b.JS.Stream(ctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if age := st.CachedInfo().Config.MaxAge; age != 0 {
			t.Fatalf("%s max age %v: unprocessed work would be aged out with the telemetry", name, age)
		}
	}
}

// ConsumeBatch hands a backlog over in groups of at most maxBatch, settles
// each message by its own result — a malformed one terminated and counted,
// a failed one redelivered, the rest acked — and stops cleanly.
func TestConsumeBatchGroupsAndSettlesEachMessage(t *testing.T) {
	const n = 50
	cons := backlog(t, "tlm.ingest.gs-batch", "test-batch", n)
	malformedBefore := bus.MalformedCount("test-batch")
	var mu sync.Mutex
	seen := map[byte]int{} // handler calls per message
	largest := 0
	consumeUntilSettled(t, cons, func(cctx context.Context) error {
		return bus.ConsumeBatch(cctx, cons, "test-batch", 8, func(_ context.Context, ms []jetstream.Msg) []error {
			mu.Lock()
			defer mu.Unlock()
			largest = max(largest, len(ms))
			errs := make([]error, len(ms))
			for i, m := range ms {
				v := m.Data()[0]
				seen[v]++
				switch {
				case v == 7:
					errs[i] = fmt.Errorf("%w: test", schemas.ErrMalformed)
				case v == 9 && seen[v] == 1:
					errs[i] = errors.New("transient") // nak'ed: comes back once
				}
			}
			return errs
		}, bus.ConsumeOptions{Logger: bustest.Discard, NakDelay: 10 * time.Millisecond, Concurrency: 2})
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		want := 1
		if i == 9 {
			want = 2
		}
		if seen[byte(i)] != want {
			t.Fatalf("message %d handled %d times, want %d", i, seen[byte(i)], want)
		}
	}
	if largest < 2 || largest > 8 {
		t.Fatalf("largest group %d, want 2..8 (a backlog is handed over in groups of at most maxBatch)", largest)
	}
	if d := bus.MalformedCount("test-batch") - malformedBefore; d != 1 {
		t.Fatalf("malformed counted %v, want 1", d)
	}
}

// backlog stores n one-byte messages (0, 1, …) on subject in TLM_INGEST of a
// fresh bus and returns a durable consumer of them.
func backlog(t *testing.T, subject, durable string, n int) jetstream.Consumer {
	t.Helper()
	b := bustest.New(t)
	js, _ := bus.NewJetStream(bustest.Conn(t, b))
	for i := range n {
		if _, err := js.Publish(ctx(t), subject, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := bus.EnsureConsumer(ctx(t), b.JS, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: durable, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// consumeUntilSettled runs consume until cons has nothing pending or
// awaiting an ack, then stops it and checks it ended cleanly.
func consumeUntilSettled(t *testing.T, cons jetstream.Consumer, consume func(context.Context) error) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx(t))
	done := make(chan error)
	go func() { done <- consume(cctx) }()
	bustest.Eventually(t, 20*time.Second, func() bool {
		info, err := cons.Info(ctx(t))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, "not every message was settled")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A handler that returns fewer results than messages has not vouched for
// the rest: they are redelivered, not acked.
func TestConsumeBatchRedeliversMessagesWithoutAResult(t *testing.T) {
	const n = 10
	cons := backlog(t, "tlm.ingest.gs-short", "test-short", n)
	var mu sync.Mutex
	seen := map[byte]int{}
	consumeUntilSettled(t, cons, func(cctx context.Context) error {
		return bus.ConsumeBatch(cctx, cons, "test-short", 4, func(_ context.Context, ms []jetstream.Msg) []error {
			mu.Lock()
			defer mu.Unlock()
			fresh := false
			for _, m := range ms {
				seen[m.Data()[0]]++
				fresh = fresh || seen[m.Data()[0]] == 1
			}
			if fresh {
				return []error{} // no result for any of them
			}
			return nil // all handled
		}, bus.ConsumeOptions{Logger: bustest.Discard, NakDelay: 10 * time.Millisecond})
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if seen[byte(i)] < 2 {
			t.Fatalf("message %d handled %d times: acked without a result", i, seen[byte(i)])
		}
	}
}

// A merged output's id names every member: the same group gets the same id
// (a redelivered group is stored once), the same first message with other
// companions gets another (its frames are not dropped as a duplicate).
func TestGroupIDNamesEveryMember(t *testing.T) {
	b := bustest.New(t)
	for i := range 3 {
		if _, err := b.JS.Publish(ctx(t), "tlm.ingest.gs-group", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := bus.EnsureConsumer(ctx(t), b.JS, schemas.StreamIngest, jetstream.ConsumerConfig{Durable: "test-group"})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(3)
	if err != nil {
		t.Fatal(err)
	}
	var ms []jetstream.Msg
	for m := range batch.Messages() {
		ms = append(ms, m)
	}
	if len(ms) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(ms))
	}
	a, c, x := ms[0], ms[1], ms[2]
	if got := bus.GroupID([]jetstream.Msg{a}); got != bus.StoredID(a) {
		t.Fatalf("one message's group id %q, want its stored id %q", got, bus.StoredID(a))
	}
	ac := bus.GroupID([]jetstream.Msg{a, c})
	if again := bus.GroupID([]jetstream.Msg{a, c}); again != ac {
		t.Fatalf("same group, ids %q and %q", ac, again)
	}
	if ax := bus.GroupID([]jetstream.Msg{a, x}); ax == ac {
		t.Fatalf("groups {a,c} and {a,x} share the id %q", ac)
	}
}
