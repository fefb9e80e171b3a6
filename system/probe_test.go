package system_test

// Diagnostics for the pipeline benchmarks, on only with PROBE=1: the
// consumers' lag and the process's CPU every 500 ms, and per-stage
// latencies of emergency frames. They found where the backlogs and the
// emergency frames' waits were (ops/perf/pipeline.md).

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/system"
)

// probe prints, under PROBE, the pipeline consumers' lag and the CPU use.
func probe(ctx context.Context, s *system.System) {
	if os.Getenv("PROBE") == "" {
		return
	}
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var last time.Duration
		cpu := bustest.CPUTime
		last = cpu()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			line := ""
			for _, c := range [][2]string{{"TLM_INGEST", "router"}, {"TLM_INGEST", "router-emergency"}, {"TLM_ROUTED", "fanin-routine"}, {"TLM_ROUTED", "fanin-emergency"}, {"TLM_WORK", "processor"}, {"TLM_WORK", "processor-emergency"}} {
				cons, err := s.Bus.JS.Consumer(ctx, c[0], c[1])
				if err != nil {
					line += " " + c[1] + " " + err.Error()
					continue
				}
				ci, err := cons.Info(ctx)
				if err != nil {
					continue
				}
				line += fmt.Sprintf(" %s pend=%d ackp=%d |", c[1], ci.NumPending, ci.NumAckPending)
			}
			c := cpu()
			fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), line, "cpu%", int((c-last)*100/(500*time.Millisecond)))
			last = c
		}
	}()
}

// stageProbe records, under PROBE, when each emergency frame (by sequence,
// in sentAt) passes each stage's subject; the returned func prints p50/p99.
func stageProbe(nc *nats.Conn, mu *sync.Mutex, sentAt map[uint64]time.Time) func() {
	if os.Getenv("PROBE") == "" {
		return func() {}
	}
	stageLat := map[string][]time.Duration{}
	stageMsgs := map[string]int{} // messages, against frames: how much each lane merges
	subjects := []string{"tlm.ingest.emergency.>", "tlm.routed.emergency.>", "tlm.work.emergency"}
	for _, subj := range subjects {
		sub, _ := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			stageMsgs[subj]++
			_, _, _ = schemas.ScanFrameBatch(m.Data, func(f schemas.FrameView) error {
				if t0, ok := sentAt[f.Sequence]; ok && f.Flags&schemas.FlagEmergency != 0 {
					stageLat[subj] = append(stageLat[subj], now.Sub(t0))
				}
				return nil
			})
		})
		_ = sub.SetPendingLimits(-1, -1)
	}
	return func() {
		// How long runnable goroutines waited for a P, over the whole run.
		sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
		metrics.Read(sample)
		if h := sample[0].Value.Float64Histogram(); h != nil {
			var total uint64
			for _, c := range h.Counts {
				total += c
			}
			var cum uint64
			for i, c := range h.Counts {
				cum += c
				for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
					if float64(cum-c) < q*float64(total) && float64(cum) >= q*float64(total) {
						fmt.Fprintf(os.Stderr, "sched latency p%g <= %v\n", q*100, time.Duration(h.Buckets[i+1]*1e9))
					}
				}
			}
		}
		mfs, _ := prometheus.DefaultGatherer.Gather()
		for _, mf := range mfs {
			switch mf.GetName() {
			case "meridian_processor_core_wait_seconds", "meridian_processor_publish_seconds", "meridian_processor_batch_seconds", "meridian_gateway_ack_seconds":
				for _, m := range mf.GetMetric() {
					h := m.GetHistogram()
					var line []string
					for _, b := range h.GetBucket() {
						line = append(line, fmt.Sprintf("%v:%d", time.Duration(b.GetUpperBound()*1e9), b.GetCumulativeCount()))
					}
					fmt.Fprintln(os.Stderr, mf.GetName(), m.GetLabel(), "n", h.GetSampleCount(), line)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, subj := range subjects {
			l := stageLat[subj]
			if len(l) == 0 {
				continue
			}
			slices.Sort(l)
			fmt.Fprintln(os.Stderr, subj, "n", len(l), "msgs", stageMsgs[subj], "p50", l[len(l)/2], "p90", l[len(l)*9/10], "p99", l[len(l)*99/100])
		}
	}
}
