package soak

import (
	"fmt"
	"io"
	"time"
)

// WriteMarkdown writes the report as the tables of ops/perf/soak.md.
func (r *Report) WriteMarkdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "Soak of %s: ", r.Start.Format(time.RFC3339))
	for i, p := range r.Phases {
		if i > 0 {
			fmt.Fprint(w, ", then ")
		}
		fmt.Fprintf(w, "%s %s at %.0f frames/s", p.Name, p.Duration, p.Rate)
	}
	fmt.Fprintf(w, "; %d stations, emergency ratio %g, sample every %s, warm-up %s.\n\n", c.Stations, c.EmergencyRatio, c.Sample, c.Warmup)

	fmt.Fprintln(w, "| t | load | phase | offered/s | sent/s | processed/s | frames/msg | RSS | heap | goroutines | lag TLM_INGEST | lag TLM_ROUTED | TLM_WORK | redelivering | emergency n | p50 | p99 | max |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Samples {
		ph := s.Phase
		if s.Warmup {
			ph += " (warm-up)"
		}
		fmt.Fprintf(w, "| %s | %.1f | %s | %.0f | %.0f | %.0f | %.1f | %s | %s | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
			s.At.Round(time.Second), s.Load1, ph, s.Offered, s.Sent, s.Processed, s.Batch, mib(s.RSS), mib(s.Heap), s.Goroutines, s.IngestLag,
			s.RoutedLag, s.WorkDepth, s.Redelivered, s.Emergency, ms(s.P50), ms(s.P99), ms(s.Max))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "| phase (after warm-up) | offered/s | mean sent/s | mean processed/s | max lag TLM_INGEST | max lag TLM_ROUTED | emergency frames | p50 | p99 | max | p99 goal |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for i, p := range r.Summary {
		verdict := "met"
		switch {
		case i > 0 && p.Rate > c.Rate:
			verdict = "not judged (overload)"
		case p.P99 >= c.LatencyGoal:
			verdict = "**not met**"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %d | %d | %d | %s | %s | %s | < %s: %s |\n", p.Name, p.Rate, p.Sent, p.Processed, p.MaxLag, p.MaxRoutedLag,
			p.Emergency, ms(p.P50), ms(p.P99), ms(p.Max), ms(c.LatencyGoal), verdict)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "* Memory: peak RSS (VmHWM) %s; RSS %s after warm-up, %s at the end of the %s phase (growth bound %s).\n",
		mib(r.PeakRSS), mib(r.RSSBaseline), mib(r.RSSEnd), r.Phases[0].Name, mib(r.RSSLimit))
	fmt.Fprintf(w, "* Goroutines: %d idle before the stations connected, %d after warm-up, %d at the end of the %s phase, %d idle after the stations left (bounds ±%d running, +%d idle).\n",
		r.GoroutinesIdleBefore, r.GoroutinesBaseline, r.GoroutinesEnd, r.Phases[0].Name, r.GoroutinesIdleAfter, c.GoroutineSlack, idleBound(c))
	fmt.Fprintf(w, "* Frames: stations sent %d (%d emergency; %d second copies relayed; %d skipped because a station was still writing); "+
		"pipeline ingested %d, processed %d, dropped %d duplicates and %d invalid; the tlm.processed subscriber saw %d (%d emergency, %d messages dropped); drained %s after the stations stopped.\n",
		r.Sent, r.Emergency, r.Relayed, r.Skipped, r.Ingested, r.Processed, r.Duplicates, r.Invalid, r.Received, r.ProbeEmergency, r.ProbeDropped,
		r.Drained.Round(100*time.Millisecond))
	fmt.Fprintf(w, "* Alongside: %d TLE updates, %d UDP detections, %d commands submitted, %d received back by stations.\n",
		r.TLE, r.Detected, r.Commands, r.CommandsReceived)
	if r.OK() {
		fmt.Fprintln(w, "* Checks: **all passed** (reconciliation, goroutine bounds, RSS growth).")
	} else {
		fmt.Fprintln(w, "* Checks: **FAILED**:")
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  * %s\n", f)
		}
	}
}
