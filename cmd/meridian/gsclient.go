package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/gateway/gsclient"
)

var gsClientFlags struct {
	station, addr, apiBase, config string
	norad                          uint32
	tleRefresh, readTimeout        time.Duration
}

var gsClientCmd = &cobra.Command{
	Use:   "gs-client",
	Short: "Dial ground stations that expect to be called; reconnect, refresh TLEs, publish their frames",
	Long: `gs-client dials one station (--station, --addr, --norad) or every station of a
JSON config file (--config), reads their length-prefixed mf1 frames and
publishes them on tlm.ingest.<station> at --nats-url (default the all-in-one's
embedded server). It reconnects with backoff 1, 2, 4 … 30 s and marks a
station Failed after 5 minutes of failed reconnection; session states are in
KV meridian_sessions. Config file:

  {"api_base": "http://127.0.0.1:8080", "tle_refresh": "10m",
   "stations": [{"station": "gs-svalbard", "addr": "10.0.0.7:5012", "norad_id": 25544}]}`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := gsClientFlags
		var cfgs []gsclient.Config
		switch {
		case f.config != "":
			var err error
			if cfgs, err = gsclient.LoadFleetFile(f.config); err != nil {
				return err
			}
		case f.station != "" && f.addr != "":
			cfgs = []gsclient.Config{{Station: f.station, Addr: f.addr, NoradID: f.norad, APIBase: f.apiBase,
				TLERefresh: f.tleRefresh, ReadTimeout: f.readTimeout}}
		default:
			return errors.New("give --station and --addr, or --config")
		}
		ctx, stop := signalContext()
		defer stop()
		url := global.natsURL
		if url == "" {
			url = "nats://" + global.natsAddr
		}
		b, err := bus.Open(ctx, bus.Config{URL: url, Name: "meridian-gs-client", Logger: slog.Default(),
			Provision: bus.ProvisionOptions{Replicas: global.replicas, Retention: global.retention}})
		if err != nil {
			return err
		}
		defer b.Close()
		if len(cfgs) == 1 && f.config == "" {
			c, err := gsclient.New(b.JS, slog.Default(), cfgs[0])
			if err != nil {
				return err
			}
			return c.Run(ctx) // ErrFailed: non-zero exit
		}
		fleet, err := gsclient.NewFleet(b.JS, slog.Default(), cfgs)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "gs-client: %d stations\n", len(cfgs))
		return fleet.Run(ctx)
	},
}

func init() {
	f := gsClientCmd.Flags()
	f.StringVar(&gsClientFlags.station, "station", "", "station id (KV key, subject token, frames' station_id)")
	f.StringVar(&gsClientFlags.addr, "addr", "", "station host:port to dial")
	f.Uint32Var(&gsClientFlags.norad, "norad", 0, "NORAD id whose TLE rides along on the frames (0: none)")
	f.StringVar(&gsClientFlags.apiBase, "api-base", "http://127.0.0.1:8080", "mission API serving GET /tle/{norad_id}")
	f.DurationVar(&gsClientFlags.tleRefresh, "tle-refresh", 10*time.Minute, "TLE refresh interval")
	f.DurationVar(&gsClientFlags.readTimeout, "read-timeout", 60*time.Second, "reconnect when a station sends nothing for this long")
	f.StringVar(&gsClientFlags.config, "config", "", "JSON file listing many stations (see --help)")
	rootCmd.AddCommand(gsClientCmd)
}
