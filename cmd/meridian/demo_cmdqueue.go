package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/demo"
)

func init() {
	demoCmd.AddCommand(&cobra.Command{
		Use:   "cmdqueue",
		Short: "Command queue: 3 producers x 5 commands, dispatched in priority order, drained on shutdown",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return demo.CmdQueue(ctx, cmd.OutOrStdout())
		},
	})
}
