package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/system"
)

var gatewayCmd = &cobra.Command{
	Use:   "gateway",
	Short: "Run the TCP/UDP gateway alone against a NATS cluster",
	Long: `Gateway accepts ground stations on --gateway-addr and SDA sensors on
--udp-addr and publishes to --nats-url (default nats://<--nats-addr>, the
all-in-one's embedded server). It shares run's flags.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		cfg := systemConfig()
		if cfg.NATSURL == "" {
			cfg.NATSURL = "nats://" + global.natsAddr
		}
		cfg.Only = []string{"udp", "gateway"}
		if cfg.Handlers > 0 {
			cfg.Only = append(cfg.Only, "handlers")
		}
		return system.Run(ctx, cfg)
	},
}

func init() {
	gatewayCmd.Flags().AddFlagSet(runCmd.Flags())
	rootCmd.AddCommand(gatewayCmd)
}
