package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/demo"
)

func init() {
	demoCmd.AddCommand(&cobra.Command{
		Use:   "gsclient",
		Short: "Ground-station client: connect, 5 frames, station drop, reconnect, TLE refresh, clean shutdown",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return demo.GSClient(ctx, cmd.OutOrStdout())
		},
	})
}
