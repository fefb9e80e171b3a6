package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
)

// cmdCmd groups the telecommand client actions.
var cmdCmd = &cobra.Command{
	Use:   "cmd",
	Short: "Submit telecommands and watch their dispatch",
	Long: `Submit telecommands to the command queue (cmd.submit.<station>) and watch
what it dispatches (cmd.dispatch.<station>), against the NATS server of a
running meridian (--nats-url, or the embedded one at --nats-addr).`,
}

var cmdSendFlags struct {
	station  string
	kind     string
	priority int
	az, el   float64
	id       string
	timeout  time.Duration
}

var cmdSendCmd = &cobra.Command{
	Use:   "send --station S --kind KIND [--priority P] [--az DEG --el DEG]",
	Short: "Submit one telecommand; prints its id once JetStream stored it",
	Long: `Send submits a command and prints its id once it is stored in the CMD
stream. Kinds: SAFE_MODE (priority 255), ABORT_PASS (200), REPOINT (100,
needs --az in [0,360) and --el in [-90,90]), STATUS_REQUEST (50),
HOUSEKEEPING (10). --priority overrides the kind's default (0-255).

  meridian cmd send --station gs-1 --kind REPOINT --az 180 --el 45`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		c := schemas.Command{ID: cmdSendFlags.id, StationID: cmdSendFlags.station, Kind: schemas.CommandKind(cmdSendFlags.kind)}
		f := cmd.Flags()
		if f.Changed("priority") {
			c.Priority = &cmdSendFlags.priority
		}
		if f.Changed("az") {
			c.Azimuth = &cmdSendFlags.az
		}
		if f.Changed("el") {
			c.Elevation = &cmdSendFlags.el
		}
		probe := c // fail on a bad command before connecting
		if probe.ID == "" {
			probe.ID = "-"
		}
		if err := probe.Validate(); err != nil {
			return fmt.Errorf("invalid command: %w", err)
		}
		nc, err := cmdClientConn("meridian-cmd-send")
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), cmdSendFlags.timeout)
		defer cancel()
		id, err := cmdqueue.Send(ctx, nc, c)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), id)
		return err
	},
}

var cmdWatchStation string

var cmdWatchCmd = &cobra.Command{
	Use:   "watch [--station S]",
	Short: "Print dispatched telecommands as JSON lines until interrupted",
	Long: `Watch prints every command the queue dispatches (to one station, or all)
as one JSON object per line, in dispatch order, until Ctrl-C. It observes
live dispatches and takes nothing from the stations' queues.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signalContext()
		defer stop()
		nc, err := cmdClientConn("meridian-cmd-watch")
		if err != nil {
			return err
		}
		defer nc.Close()
		enc := json.NewEncoder(cmd.OutOrStdout())
		return cmdqueue.Watch(ctx, nc, cmdWatchStation, func(c schemas.Command) error { return enc.Encode(c) })
	},
}

// cmdClientConn connects to --nats-url, or to the embedded server of a
// running meridian at --nats-addr.
func cmdClientConn(name string) (*nats.Conn, error) {
	url := global.natsURL
	if url == "" {
		url = "nats://" + global.natsAddr
	}
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s (is meridian running?): %w", url, err)
	}
	return nc, nil
}

func init() {
	f := cmdSendCmd.Flags()
	f.StringVar(&cmdSendFlags.station, "station", "", "ground station id (required)")
	f.StringVar(&cmdSendFlags.kind, "kind", "", "SAFE_MODE, ABORT_PASS, REPOINT, STATUS_REQUEST or HOUSEKEEPING (required)")
	f.IntVar(&cmdSendFlags.priority, "priority", 0, "priority 0-255 (default: the kind's)")
	f.Float64Var(&cmdSendFlags.az, "az", 0, "REPOINT azimuth, degrees [0,360)")
	f.Float64Var(&cmdSendFlags.el, "el", 0, "REPOINT elevation, degrees [-90,90]")
	f.StringVar(&cmdSendFlags.id, "id", "", "command id (default: a new unique id); resending an id within 2 min stores it once")
	f.DurationVar(&cmdSendFlags.timeout, "timeout", 10*time.Second, "how long to wait for JetStream to store the command")
	_ = cmdSendCmd.MarkFlagRequired("station")
	_ = cmdSendCmd.MarkFlagRequired("kind")
	cmdWatchCmd.Flags().StringVar(&cmdWatchStation, "station", "", "only this station's dispatches (default: all)")
	cmdCmd.AddCommand(cmdSendCmd, cmdWatchCmd)
	rootCmd.AddCommand(cmdCmd)
}
