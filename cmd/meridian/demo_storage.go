package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/demo"
)

// demoRunner adapts a demo function to a cobra command.
func demoRunner(run func(context.Context, io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		return run(ctx, cmd.OutOrStdout())
	}
}

func init() {
	demoCmd.AddCommand(
		&cobra.Command{Use: "pages", Short: "TLE Record Page Manager: page file, buffer pool, slotted pages", Args: cobra.NoArgs, RunE: demoRunner(demo.Pages)},
		&cobra.Command{Use: "btree", Short: "B+ Tree TLE Index Engine: lookups, range scans, splits, bulk load, deletes", Args: cobra.NoArgs, RunE: demoRunner(demo.BTree)},
		&cobra.Command{Use: "lsm", Short: "LSM-Backed TLE Storage Engine: inserts, bloom skips, scans, compaction", Args: cobra.NoArgs, RunE: demoRunner(demo.LSM)},
		&cobra.Command{Use: "wal", Short: "Durable TLE Update Pipeline: WAL, crash recovery, truncation", Args: cobra.NoArgs, RunE: demoRunner(demo.WAL)},
	)
}

func init() {
	demoCmd.AddCommand(&cobra.Command{Use: "aggregator", Short: "Multi-Source Telemetry Aggregator: the real pipeline with 4 uplinks and a replay source",
		Args: cobra.NoArgs, RunE: demoRunner(demo.Aggregator)})
}
