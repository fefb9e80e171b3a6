package system_test

// Diagnostics for the pipeline benchmarks, on only with PROBE=1: the
// consumers' lag and the process's CPU every 500 ms, and per-stage
// latencies of emergency frames. They found where the backlogs and the
// emergency frames' waits were (ops/perf/pipeline.md).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

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
		cpu := func() time.Duration {
			var ru syscall.Rusage
			_ = syscall.Getrusage(0, &ru)
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
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
	subjects := []string{"tlm.ingest.emergency.>", "tlm.routed.emergency.>", "tlm.work.emergency", "tlm.processed.>"}
	for _, subj := range subjects {
		sub, _ := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
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
		mu.Lock()
		defer mu.Unlock()
		for _, subj := range subjects {
			l := stageLat[subj]
			if len(l) == 0 {
				continue
			}
			slices.Sort(l)
			fmt.Fprintln(os.Stderr, subj, "n", len(l), "p50", l[len(l)/2], "p90", l[len(l)*9/10], "p99", l[len(l)*99/100])
		}
	}
}
