package soak_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/ops/soak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

// TestSoakShort keeps the harness from rotting: a CI-sized soak of the
// whole system at a modest rate. It asserts the reconciliation (every frame
// the stations sent was ingested and processed or dropped as a relayed
// duplicate; the tlm.processed subscriber saw every processed frame) and
// the goroutine bounds; no timing and no memory thresholds (10 seconds is
// all warm-up for memory).
func TestSoakShort(t *testing.T) {
	var progress strings.Builder
	rep, err := soak.Run(context.Background(), soak.Config{Duration: 10 * time.Second, Rate: 500, Sample: 2 * time.Second,
		Warmup: 4 * time.Second, DrainTimeout: 40 * time.Second, RSSGrowthLimit: 1 << 62, DataDir: t.TempDir(),
		Progress: &progress, Logger: bustest.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	rep.WriteMarkdown(&md)
	t.Log("\n" + progress.String() + "\n" + md.String())
	if !rep.OK() {
		t.Fatalf("soak checks failed: %v", rep.Failures)
	}
	if rep.Sent == 0 || rep.Ingested != rep.Sent || rep.Processed+rep.Duplicates != rep.Ingested || rep.Received != rep.Processed {
		t.Fatalf("sent %d, ingested %d, processed %d, duplicates %d, subscriber saw %d", rep.Sent, rep.Ingested, rep.Processed, rep.Duplicates, rep.Received)
	}
	if rep.Emergency == 0 || rep.ProbeEmergency == 0 {
		t.Fatalf("no emergency frames measured (sent %d, seen %d)", rep.Emergency, rep.ProbeEmergency)
	}
	if len(rep.Samples) < 5 || rep.GoroutinesBaseline == 0 {
		t.Fatalf("%d samples, goroutine baseline %d", len(rep.Samples), rep.GoroutinesBaseline)
	}
}

// TestSoak is the real soak, off by default: MERIDIAN_SOAK=5m runs the
// sustained phase for that long (plus MERIDIAN_SOAK_FULL, e.g. 30s, at
// full rate) with the defaults of `meridian soak`, and fails on any check.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("MERIDIAN_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set MERIDIAN_SOAK=5m to run the soak (see ops/perf/soak.md)")
	}
	full, _ := time.ParseDuration(os.Getenv("MERIDIAN_SOAK_FULL"))
	rep, err := soak.Run(context.Background(), soak.Config{Duration: d, FullDuration: full, DataDir: t.TempDir(), Progress: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteMarkdown(os.Stdout)
	if !rep.OK() {
		t.Fatalf("soak checks failed: %v", rep.Failures)
	}
}
