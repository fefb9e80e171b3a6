package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/system"
)

var workerHTTPAddr string

var workerCmd = &cobra.Command{
	Use:   "worker NAME [NAME...]",
	Short: "Run one or more components alone against a NATS cluster",
	Long: `Worker runs the named components in this process against --nats-url
(default nats://127.0.0.1:4222, the all-in-one's embedded server). Several
instances of a worker share its durable consumer and split the work.

Components: ` + strings.Join(system.Components(), ", "),
	Args: cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		for _, a := range args {
			if !system.Known(a) {
				return fmt.Errorf("unknown component %q (known: %s)", a, strings.Join(system.Components(), ", "))
			}
		}
		ctx, stop := signalContext()
		defer stop()
		cfg := systemConfig()
		if cfg.NATSURL == "" {
			cfg.NATSURL = "nats://" + global.natsAddr
		}
		cfg.HTTPAddr = workerHTTPAddr
		cfg.Only = args
		return system.Run(ctx, cfg)
	},
}

func init() {
	workerCmd.Flags().StringVar(&workerHTTPAddr, "http-addr", "127.0.0.1:0", "ops HTTP address for /metrics and probes (port 0 picks one)")
	rootCmd.AddCommand(workerCmd)
}
