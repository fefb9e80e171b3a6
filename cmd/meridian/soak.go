package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/soak"
)

var soakFlags struct {
	cfg        soak.Config
	out        string
	cpuProfile string
	goroutines string
	heap       string
}

var soakCmd = &cobra.Command{
	Use:   "soak",
	Short: "Run the whole system under simulated load for a bounded time and check it stays flat",
	Long: `Soak starts the whole system in this process on a fresh data directory
(a temporary one unless --data-dir is given), drives it with the simulated
constellation at --rate frames/s for --duration, then at --full-rate for
--full-duration, and prints a sample every --sample: RSS, heap, goroutines,
frames sent and processed, the router's lag on TLM_INGEST and the latency of
emergency frames (frame timestamp to tlm.processed). When the stations stop
it waits for the pipeline to drain and checks that every frame sent was
processed (or dropped as a relayed duplicate), that the goroutine count
stayed within --goroutine-slack of its value after warm-up, and that RSS
grew less than the bound. It prints a markdown report (also to --out) and
exits 1 if a check failed. See ops/perf/soak.md.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		cfg := soakConfig(cmd)
		cfg.Progress = cmd.OutOrStdout()
		if soakFlags.cpuProfile != "" {
			f, err := os.Create(soakFlags.cpuProfile)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		if soakFlags.goroutines != "" {
			f, err := os.Create(soakFlags.goroutines)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			defer f.Close()
			cfg.GoroutineDump = f
		}
		if soakFlags.heap != "" {
			f, err := os.Create(soakFlags.heap)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			defer f.Close()
			cfg.HeapProfile = f
		}
		rep, err := soak.Run(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout())
		rep.WriteMarkdown(cmd.OutOrStdout())
		if soakFlags.out != "" {
			f, err := os.Create(soakFlags.out)
			if err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			rep.WriteMarkdown(f)
			if err := f.Close(); err != nil {
				return fmt.Errorf("soak: %w", err)
			}
		}
		if !rep.OK() {
			return errors.New("soak: checks failed (see the report)")
		}
		return nil
	},
}

func init() {
	f := soakCmd.Flags()
	c := &soakFlags.cfg
	f.DurationVar(&c.Duration, "duration", 0, "sustained phase (default 5m)")
	f.Float64Var(&c.Rate, "rate", 0, "sustained offered load, frames/s over all stations (default 10000, the rated load)")
	f.DurationVar(&c.FullDuration, "full-duration", 30*time.Second, "overload phase at --full-rate after the sustained one (0: none)")
	f.Float64Var(&c.FullRate, "full-rate", 0, "overload phase's offered load, frames/s (default 100000)")
	f.Float64Var(&c.EmergencyRatio, "emergency-ratio", 0, "fraction of frames flagged emergency (default 0.01)")
	f.IntVar(&c.Stations, "stations", 0, "simulated ground stations, 4 satellites each (default 12)")
	f.DurationVar(&c.Sample, "sample", 0, "sampling interval (default 5s)")
	f.DurationVar(&c.Warmup, "warmup", 0, "excluded from the growth checks (default 2m, or half of --duration if shorter)")
	f.DurationVar(&c.DrainTimeout, "drain-timeout", 0, "how long the pipeline may take to drain once the stations stop (default 3m)")
	f.IntVar(&c.GoroutineSlack, "goroutine-slack", 0, "allowed goroutine count difference from the baseline (default 25)")
	f.Uint64Var(&c.RSSGrowthLimit, "rss-growth-limit", 0, "allowed RSS growth in bytes after warm-up (default 25% of the baseline + 64 MiB)")
	f.DurationVar(&c.LatencyGoal, "latency-goal", 0, "emergency p99 goal the report is judged against (default 20ms)")
	f.StringVar(&soakFlags.out, "out", "", "also write the markdown report to this file")
	f.StringVar(&soakFlags.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	f.StringVar(&soakFlags.goroutines, "goroutine-dump", "", "write goroutine stacks after warm-up, at the end and once the stations left to this file")
	f.StringVar(&soakFlags.heap, "memprofile", "", "write a heap profile taken at the last sample to this file")
	rootCmd.AddCommand(soakCmd)
}

// soakConfig is the soak's configuration from its flags and the global ones
// the user gave: the system's data directory only when asked for (a fresh
// temporary one otherwise), and a 1-minute retention unless --retention is
// given, so that within the run the store reaches its steady state and
// memory can be judged flat.
func soakConfig(cmd *cobra.Command) soak.Config {
	cfg := soakFlags.cfg
	if cmd.Flags().Changed("data-dir") || os.Getenv("MERIDIAN_DATA_DIR") != "" {
		cfg.DataDir = global.dataDir
	}
	cfg.Retention = time.Minute
	if cmd.Flags().Changed("retention") || os.Getenv("MERIDIAN_RETENTION") != "" {
		cfg.Retention = global.retention
	}
	return cfg
}
