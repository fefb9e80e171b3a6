package main

import (
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/system"
)

var runFlags struct {
	gatewayAddr string
	udpAddr     string
	httpAddr    string
	syncAlways  bool
	apiToken    string
	gsStations  string
	stationTok  string
	handlers    int
	demo        bool
}

var runCmd = &cobra.Command{
	Use:   "run",
	Short: "Run the whole system in one process on an embedded NATS server",
	Long: `Run starts an embedded NATS server with JetStream (store under --data-dir)
and every Meridian component. With --nats-url it joins an external cluster
instead. Ctrl-C or SIGTERM shuts down in order within 10 s.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		return system.Run(ctx, systemConfig())
	},
}

func systemConfig() system.Config {
	return system.Config{
		DataDir:      global.dataDir,
		NATSAddr:     global.natsAddr,
		NATSURL:      global.natsURL,
		GatewayAddr:  runFlags.gatewayAddr,
		UDPAddr:      runFlags.udpAddr,
		HTTPAddr:     runFlags.httpAddr,
		SyncAlways:   runFlags.syncAlways,
		Replicas:     global.replicas,
		Retention:    global.retention,
		NATSConfig:   global.natsConf,
		Credentials:  global.creds,
		APIToken:     runFlags.apiToken,
		GSStations:   runFlags.gsStations,
		StationToken: runFlags.stationTok,
		Handlers:     runFlags.handlers,
		Demo:         runFlags.demo,
		TLESources:   global.tleSrcs,
	}
}

func init() {
	f := runCmd.Flags()
	f.StringVar(&runFlags.gatewayAddr, "gateway-addr", "0.0.0.0:7777", "TCP address ground stations connect to")
	f.StringVar(&runFlags.udpAddr, "udp-addr", ":7778", "UDP address for SDA radar/optical detections")
	f.StringVar(&runFlags.httpAddr, "http-addr", "127.0.0.1:8080", "ops HTTP address (dashboard, /metrics, /healthz, /readyz)")
	f.BoolVar(&runFlags.syncAlways, "sync-always", false, "embedded NATS fsyncs every write (acked data survives power loss; ~25x slower)")
	f.StringVar(&runFlags.apiToken, "api-token", "", "bearer token required by POST /api/commands (empty: HTTP command submission disabled)")
	f.StringVar(&runFlags.gsStations, "gs-stations", "", "gs-client fleet file (JSON): stations this process dials")
	f.StringVar(&runFlags.stationTok, "require-station-token", "", "token every station must present in its HELLO (token=...); empty: none required")
	f.IntVar(&runFlags.handlers, "handlers", 0, "course-style downstream handler consumers of TLM_INGEST (each sees every frame)")
	f.BoolVar(&runFlags.demo, "demo", false, "also run the simulated constellation against this process (12 stations × 4 satellites, sensors, TLE sources, operators)")
	rootCmd.AddCommand(runCmd)
}
