package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/workers/archive"
)

var archiveFlags struct{ source, from, to string }

var archiveCmd = &cobra.Command{Use: "archive", Short: "Inspect the on-disk frame archive"}

var archiveQueryCmd = &cobra.Command{
	Use:   "query --source S [--from T] [--to T]",
	Short: "Print a source's archived frames in a time range as JSON lines",
	Long: `Query reads the archive under --data-dir (read-only, safe while meridian run
writes it) and prints the frames of --source whose timestamp is within
[--from, --to], oldest first. Times are RFC 3339 or Unix milliseconds.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		from, err := parseTime(archiveFlags.from, 0)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		to, err := parseTime(archiveFlags.to, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		a, err := archive.Open(filepath.Join(global.dataDir, "archive"), true)
		if err != nil {
			return err
		}
		defer a.Close()
		frames, err := a.Query(archiveFlags.source, from, to)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		for i := range frames {
			if err := enc.Encode(&frames[i]); err != nil {
				return err
			}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d frames of %s (archive holds %d)\n", len(frames), archiveFlags.source, a.Count())
		return nil
	},
}

// parseTime reads RFC 3339 or Unix milliseconds; empty gives def.
func parseTime(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseUint(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("want RFC 3339 or Unix milliseconds: %w", err)
	}
	return uint64(t.UnixMilli()), nil
}

func init() {
	f := archiveQueryCmd.Flags()
	f.StringVar(&archiveFlags.source, "source", "", "source id (required)")
	f.StringVar(&archiveFlags.from, "from", "", "earliest timestamp (RFC 3339 or Unix ms)")
	f.StringVar(&archiveFlags.to, "to", "", "latest timestamp (RFC 3339 or Unix ms)")
	_ = archiveQueryCmd.MarkFlagRequired("source")
	archiveCmd.AddCommand(archiveQueryCmd)
	rootCmd.AddCommand(archiveCmd)
}
