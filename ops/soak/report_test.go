package soak

import (
	"strings"
	"testing"
	"time"
)

// The latency goal is judged at the rated (sustained) load; an overload
// phase beyond it is reported but not judged.
func TestReportJudgesLatencyAtTheRatedLoadOnly(t *testing.T) {
	cfg := Config{Rate: 10_000, FullRate: 100_000, LatencyGoal: 20 * time.Millisecond}
	for _, tc := range []struct {
		sustainedP99 time.Duration
		want         string
	}{
		{12 * time.Millisecond, "| < 20.0 ms: met |"},
		{24 * time.Millisecond, "| < 20.0 ms: **not met** |"},
	} {
		phases := []Phase{{Name: "sustained", Rate: cfg.Rate}, {Name: "full", Rate: cfg.FullRate}}
		r := &Report{Config: cfg, Phases: phases, Summary: []PhaseSummary{
			{Phase: phases[0], P99: tc.sustainedP99},
			{Phase: phases[1], P99: 900 * time.Millisecond},
		}}
		var b strings.Builder
		r.WriteMarkdown(&b)
		lines := strings.Split(b.String(), "\n")
		var sustained, full string
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "| sustained |"):
				sustained = l
			case strings.HasPrefix(l, "| full |"):
				full = l
			}
		}
		if !strings.HasSuffix(sustained, tc.want) {
			t.Errorf("sustained p99 %v judged %q, want suffix %q", tc.sustainedP99, sustained, tc.want)
		}
		if !strings.HasSuffix(full, "not judged (overload) |") {
			t.Errorf("overload phase judged %q", full)
		}
	}
}
