package cmdqueue_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
)

var (
	latency       = flag.Bool("cmdqueue.latency", false, "run the submit-to-dispatch latency harness (ops/perf/cmdqueue.md)")
	latencyRate   = flag.Int("cmdqueue.rate", 10_000, "commands per second for the latency harness")
	latencyLimits = flag.Bool("cmdqueue.limits", false, "experiment: recreate CMD and CMD_DISPATCH with LimitsPolicy instead of WorkQueuePolicy")
	latencyDur    = flag.Duration("cmdqueue.duration", 5*time.Second, "how long the latency harness submits")
)

// TestSubmitDispatchLatency measures, on a real embedded NATS server over
// loopback TCP, the time from a command's publish on cmd.submit.<station>
// to its arrival on cmd.dispatch.<station> (seen by a core subscription),
// at a paced rate. It is a measurement harness, off by default:
//
//	go test ./workers/cmdqueue -run TestSubmitDispatchLatency -count=1 -v -args -cmdqueue.latency
func TestSubmitDispatchLatency(t *testing.T) {
	if !*latency {
		t.Skip("measurement harness; enable with -args -cmdqueue.latency")
	}
	b := bustest.New(t)
	if *latencyLimits {
		// Experiment (ops/perf/cmdqueue.md): the same streams with
		// LimitsPolicy, so an ack does not delete the message.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, sc := range bus.Streams(bus.ProvisionOptions{}) {
			if sc.Name == schemas.StreamCmd || sc.Name == schemas.StreamDispatch {
				if err := b.JS.DeleteStream(ctx, sc.Name); err != nil {
					t.Fatal(err)
				}
				sc.Retention = jetstream.LimitsPolicy
				if _, err := b.JS.CreateStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	w, _ := startWorker(t, b, cmdqueue.Config{Logger: bustest.Discard, StatsInterval: time.Second})
	<-w.Started()

	total := int(float64(*latencyRate) * latencyDur.Seconds())
	lat := make([]time.Duration, 0, total)
	var mu sync.Mutex
	done := make(chan struct{})
	obs := bustest.Conn(t, b)
	sub, err := obs.Subscribe(schemas.DispatchAll, func(m *nats.Msg) {
		now := time.Now().UnixNano()
		var c schemas.Command
		if err := schemas.Unmarshal(m.Data, &c); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		lat = append(lat, time.Duration(now-c.IssuedAtNs))
		if len(lat) == total {
			close(done)
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := obs.Flush(); err != nil {
		t.Fatal(err)
	}

	pubConn := bustest.Conn(t, b)
	js, err := bus.NewJetStream(pubConn)
	if err != nil {
		t.Fatal(err)
	}
	cpu0 := bustest.CPUTime()
	kinds := []schemas.CommandKind{schemas.CmdSafeMode, schemas.CmdAbortPass, schemas.CmdStatusRequest, schemas.CmdHousekeeping}
	start := time.Now()
	interval := time.Second / time.Duration(*latencyRate)
	for i := range total {
		// Pace by the clock: sleep until command i's slot (coarse sleeps
		// send small bursts, as real submitters would).
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 200*time.Microsecond {
			time.Sleep(d)
		}
		c := schemas.Command{ID: fmt.Sprintf("lat-%d", i), StationID: fmt.Sprintf("gs-%d", i%12),
			Kind: kinds[i%len(kinds)], IssuedAtNs: time.Now().UnixNano()}
		data, err := schemas.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: schemas.SubmitSubject(c.StationID), Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{c.ID}}}); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Since(start)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("only %d of %d dispatches observed", len(lat), total)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	}
	cpu := bustest.CPUTime() - cpu0
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("submitted %d commands in %v (%.0f/s offered)", total, sent.Round(time.Millisecond), float64(total)/sent.Seconds())
	t.Logf("submit->dispatch latency: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v",
		q(0.50).Round(time.Microsecond), q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond),
		q(0.999).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	t.Logf("process CPU (server + worker + clients): %v total, %.1f µs per command, %.0f%% of one core at the offered rate",
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(total), 100*cpu.Seconds()/sent.Seconds())
	if c := w.Counters(); c.Stored != uint64(total) || c.Duplicates != 0 {
		t.Errorf("counters %+v", c)
	}
}
