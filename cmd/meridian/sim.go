package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/ops/sim"
)

var simFlags struct {
	gatewayAddr, udpAddr string
	cfg                  sim.Config
	duration             time.Duration
}

var simCmd = &cobra.Command{
	Use:   "sim",
	Short: "Simulate the constellation: stations dialling the gateway, sensors, TLE sources, operators",
	Long: `Sim drives a running Meridian from the outside: 12 stations × 4 satellites
stream mf1 frames to the gateway, sensors send UDP detections, the five
catalog sources publish TLE updates and operators submit commands (the last
two over NATS at --nats-url, default the embedded server's address).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		if simFlags.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, simFlags.duration)
			defer cancel()
		}
		url := global.natsURL
		if url == "" {
			url = "nats://" + global.natsAddr
		}
		nc, err := nats.Connect(url, nats.Name("meridian-sim"))
		if err != nil {
			return fmt.Errorf("sim: NATS at %s: %w", url, err)
		}
		defer nc.Close()
		c := simFlags.cfg
		c.GatewayAddr, c.UDPAddr = simFlags.gatewayAddr, simFlags.udpAddr
		s, err := sim.New(c, nc)
		if err != nil {
			return err
		}
		go report(ctx, cmd, s)
		return s.Run(ctx)
	},
}

// report prints what the simulator sent every 5 seconds.
func report(ctx context.Context, cmd *cobra.Command, s *sim.Sim) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(cmd.OutOrStdout(), "sent: %d frames (%d emergency, %d relayed twice), %d detections, %d TLE updates, %d commands; %d commands received by stations\n",
				s.Stats.Frames.Load(), s.Stats.Emergency.Load(), s.Stats.Relayed.Load(), s.Stats.Detections.Load(),
				s.Stats.TLEUpdates.Load(), s.Stats.Commands.Load(), s.Stats.Commanded.Load())
		}
	}
}

func init() {
	f := simCmd.Flags()
	f.StringVar(&simFlags.gatewayAddr, "gateway-addr", "127.0.0.1:7777", "gateway TCP address to dial (empty: no stations)")
	f.StringVar(&simFlags.udpAddr, "udp-addr", "127.0.0.1:7778", "gateway UDP address (empty: no detections)")
	f.IntVar(&simFlags.cfg.Stations, "stations", 12, "ground stations")
	f.IntVar(&simFlags.cfg.SatsPerStation, "sats-per-station", 4, "satellites per station")
	f.Float64Var(&simFlags.cfg.FrameRate, "rate", 100, "frames per second per station")
	f.Float64Var(&simFlags.cfg.EmergencyRatio, "emergency-ratio", 0.01, "fraction of frames flagged emergency")
	f.Float64Var(&simFlags.cfg.OverlapRatio, "overlap-ratio", 0.05, "fraction of frames relayed by a second station")
	f.Float64Var(&simFlags.cfg.DetectionRate, "detection-rate", 20, "UDP detections per second per sensor")
	f.Float64Var(&simFlags.cfg.TLERate, "tle-rate", 2, "TLE updates per second per source")
	f.Float64Var(&simFlags.cfg.CommandRate, "command-rate", 1, "commands per second")
	f.DurationVar(&simFlags.cfg.Reconnect, "reconnect-every", 0, "stations drop and redial this often (0: never)")
	f.DurationVar(&simFlags.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	rootCmd.AddCommand(simCmd)
}
