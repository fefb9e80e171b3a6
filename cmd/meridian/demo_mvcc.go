package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/demo"
)

func init() {
	var dir string
	cmd := &cobra.Command{Use: "mvcc", Short: "Conjunction Query Engine with MVCC: snapshot reads, tombstones, conflicts, watermark GC, 10,000-TLE catalog",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return demo.MVCCIn(ctx, cmd.OutOrStdout(), dir)
		}}
	cmd.Flags().StringVar(&dir, "dir", "", "keep the scenario stores under this (empty or new) directory instead of a temporary one")
	demoCmd.AddCommand(cmd)
}
