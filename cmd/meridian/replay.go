package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/workers/replay"
)

var replayFlags struct{ since, until, station, speed string }

var replayCmd = &cobra.Command{
	Use:   "replay --since T [--until T] [--station S] [--speed max|1x|Nx]",
	Short: "Re-play raw telemetry from TLM_INGEST into the pipeline as archived_replay frames",
	Long: `Replay reads TLM_INGEST from --since (RFC 3339, Unix ms, or a duration ago
such as 10m) to --until (default: what the stream holds now), optionally one
station, and re-publishes each batch on tlm.replay.replay-<station>, where the
router takes it like a live source. --speed 1x keeps the original spacing,
Nx plays N times faster, max (default) as fast as possible.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		since, err := parseWhen(replayFlags.since)
		if err != nil || since.IsZero() {
			return fmt.Errorf("--since: %v", err)
		}
		until, err := parseWhen(replayFlags.until)
		if err != nil {
			return fmt.Errorf("--until: %w", err)
		}
		speed, err := parseSpeed(replayFlags.speed)
		if err != nil {
			return err
		}
		ctx, stop := signalContext()
		defer stop()
		url := global.natsURL
		if url == "" {
			url = "nats://" + global.natsAddr
		}
		copts, err := global.creds.Options()
		if err != nil {
			return err
		}
		nc, err := nats.Connect(url, append(copts, nats.Name("meridian-replay"))...)
		if err != nil {
			return fmt.Errorf("replay: NATS at %s: %w", url, err)
		}
		defer nc.Close()
		last := time.Now()
		res, err := replay.Run(ctx, nc, replay.Config{Since: since, Until: until, Station: replayFlags.station, Speed: speed,
			Progress: func(b, f int) {
				if time.Since(last) > time.Second {
					fmt.Fprintf(cmd.ErrOrStderr(), "replayed %d batches, %d frames\n", b, f)
					last = time.Now()
				}
			}})
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "replayed %d batches, %d frames\n", res.Batches, res.Frames)
		return nil
	},
}

// parseWhen reads RFC 3339, Unix milliseconds, or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func parseSpeed(s string) (float64, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "", "max":
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--speed must be max, 1x or Nx, not %q", s)
	}
	return v, nil
}

func init() {
	f := replayCmd.Flags()
	f.StringVar(&replayFlags.since, "since", "", "start: RFC 3339, Unix ms, or a duration ago (e.g. 10m)")
	f.StringVar(&replayFlags.until, "until", "", "end (default: the stream's end when the replay starts)")
	f.StringVar(&replayFlags.station, "station", "", "only this station")
	f.StringVar(&replayFlags.speed, "speed", "max", "max, 1x, or Nx")
	_ = replayCmd.MarkFlagRequired("since")
	rootCmd.AddCommand(replayCmd)
}
