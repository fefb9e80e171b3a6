package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/gateway/stationsim"
)

var simStationsFlags struct {
	count, basePort, satellites int
	host                        string
	rate, emergencyRatio        float64
	configOut                   string
	norad                       uint32
}

var simStationsCmd = &cobra.Command{
	Use:   "stations",
	Short: "Run simulated ground stations that wait to be dialled (for meridian gs-client)",
	Long: `Stations listens on --host:--base-port, --base-port+1, … and streams mf1
frames to whoever connects, like stations that expect the control plane to
call them. With --config-out it writes the gs-client fleet file that dials
them: meridian gs-client --config stations.json`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		f := simStationsFlags
		cfgs := make([]stationsim.Config, f.count)
		for i := range cfgs {
			sats := make([]uint32, f.satellites)
			for j := range sats {
				sats[j] = uint32(i*f.satellites + j + 1)
			}
			cfgs[i] = stationsim.Config{Addr: net.JoinHostPort(f.host, strconv.Itoa(f.basePort+i)), StationNum: uint8(i + 1),
				Satellites: sats, Rate: f.rate, EmergencyRatio: f.emergencyRatio, Seed: uint64(i + 1)}
		}
		var mu sync.Mutex
		fleet := map[int]map[string]any{}
		onListen := func(i int, addr string) {
			fmt.Fprintf(cmd.OutOrStdout(), "station gs-dial-%02d listening on %s\n", i+1, addr)
			mu.Lock()
			fleet[i] = map[string]any{"station": fmt.Sprintf("gs-dial-%02d", i+1), "addr": addr, "norad_id": f.norad}
			complete := len(fleet) == f.count
			mu.Unlock()
			if complete && f.configOut != "" {
				if err := writeFleet(f.configOut, fleet, f.count); err != nil {
					slog.Error("writing fleet file", "err", err)
				}
			}
		}
		return stationsim.RunAll(ctx, slog.Default(), onListen, cfgs...)
	},
}

func writeFleet(path string, fleet map[int]map[string]any, n int) error {
	stations := make([]map[string]any, n)
	for i := range n {
		stations[i] = fleet[i]
	}
	b, err := json.MarshalIndent(map[string]any{"stations": stations}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func init() {
	f := simStationsCmd.Flags()
	f.IntVar(&simStationsFlags.count, "count", 12, "stations")
	f.StringVar(&simStationsFlags.host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&simStationsFlags.basePort, "base-port", 5012, "port of the first station; the others follow")
	f.IntVar(&simStationsFlags.satellites, "satellites", 4, "satellites per station")
	f.Float64Var(&simStationsFlags.rate, "rate", 10, "frames per second per connection")
	f.Float64Var(&simStationsFlags.emergencyRatio, "emergency-ratio", 0.05, "fraction of frames flagged emergency")
	f.StringVar(&simStationsFlags.configOut, "config-out", "", "write a gs-client fleet file for these stations")
	f.Uint32Var(&simStationsFlags.norad, "norad", 25544, "NORAD id whose TLE the dialling clients refresh")
	simCmd.AddCommand(simStationsCmd)
}
