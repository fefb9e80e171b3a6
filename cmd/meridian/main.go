// Command meridian is the one Meridian binary. Subcommands wire packages
// together and hold no logic of their own: `meridian run` starts the whole
// system on an embedded NATS server; the others run one component, a
// client action or a course demo. Every flag can also be set through an
// environment variable MERIDIAN_<FLAG> (e.g. MERIDIAN_DATA_DIR).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/ops/memlimit"
)

// global flags shared by every subcommand.
var global struct {
	dataDir   string
	natsAddr  string
	natsURL   string
	replicas  int
	retention time.Duration
	memLimit  string
	natsConf  string
	creds     bus.Credentials
	logLevel  string
	logFormat string
	tleSrcs   string
}

var rootCmd = &cobra.Command{
	Use:   "meridian",
	Short: "Control plane for a 48-satellite constellation and its 12 ground stations",
	Long: `Meridian ingests telemetry from ground stations, routes, prioritises, processes
and archives it, queues and dispatches telecommands, and keeps the Orbital
Object Registry — all over NATS JetStream.

Every flag can be set by an environment variable MERIDIAN_<FLAG>, e.g.
MERIDIAN_DATA_DIR=/var/lib/meridian or MERIDIAN_NATS_URL=nats://a,nats://b.`,
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
		if err := bindEnv(cmd); err != nil {
			return err
		}
		if err := setupLogging(cmd.ErrOrStderr()); err != nil {
			return err
		}
		limit, from, err := memlimit.Apply(global.memLimit, os.DirFS("/sys/fs/cgroup"))
		if err != nil {
			return fmt.Errorf("--memory-limit: %w", err)
		}
		slog.Debug("soft memory limit", "bytes", limit, "from", from)
		return nil
	},
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&global.tleSrcs, "tle-sources", "", `the store's catalog providers "id:name:priority,..." (empty: 1:18th-sds:5,2:esa-sst:4,3:leolabs:3,4:exoanalytic:2,5:numerica:1)`)
	pf.StringVar(&global.dataDir, "data-dir", "./data", "directory for the embedded NATS store, the archive and the OOR")
	pf.StringVar(&global.natsAddr, "nats-addr", "127.0.0.1:4222", "client address of the embedded NATS server (for the nats CLI); port 0 picks one")
	pf.StringVar(&global.natsURL, "nats-url", "", "external NATS cluster URL(s); empty runs an embedded server")
	pf.StringVar(&global.natsConf, "nats-config", "", "nats-server config file for the embedded server (accounts, users, permissions, TLS)")
	pf.StringVar(&global.creds.CredsFile, "nats-creds", "", "NATS credentials file (JWT + nkey) for this process")
	pf.StringVar(&global.creds.NKeySeed, "nats-nkey", "", "file with this process's NATS nkey seed")
	pf.StringVar(&global.creds.User, "nats-user", "", "NATS user name")
	pf.StringVar(&global.creds.Password, "nats-password", "", "NATS password")
	pf.StringVar(&global.creds.Token, "nats-token", "", "NATS token")
	pf.StringVar(&global.creds.CAFile, "nats-ca", "", "CA file to verify the NATS server (enables TLS)")
	pf.StringVar(&global.creds.CertFile, "nats-cert", "", "client certificate for mutual TLS with NATS")
	pf.StringVar(&global.creds.KeyFile, "nats-key", "", "client key for mutual TLS with NATS")
	pf.IntVar(&global.replicas, "replicas", 1, "JetStream replicas for the contract's streams (3 on a cluster)")
	pf.StringVar(&global.memLimit, "memory-limit", "auto", `soft memory limit for the Go runtime: a size (1500MiB), "off", or "auto" (85% of the container's cgroup limit unless GOMEMLIMIT is set)`)
	pf.DurationVar(&global.retention, "retention", 24*time.Hour, "how long raw and processed telemetry is kept in TLM_INGEST, TLM_PROCESSED and SDA (replay window)")
	pf.StringVar(&global.logLevel, "log-level", "info", "debug, info, warn or error")
	pf.StringVar(&global.logFormat, "log-format", "text", "text or json")
}

// bindEnv sets every flag the user did not give from MERIDIAN_<FLAG>.
func bindEnv(cmd *cobra.Command) error {
	var errs []error
	set := func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := "MERIDIAN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.InheritedFlags().VisitAll(set)
	return errors.Join(errs...)
}

func setupLogging(w interface{ Write([]byte) (int, error) }) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(global.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch global.logFormat {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", global.logFormat)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits at once, for the operator who does not want to wait for the drain.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-ch
		if !ok {
			return
		}
		slog.Info("signal received; shutting down (send again to force)", "signal", s.String())
		cancel()
		if _, ok := <-ch; ok {
			slog.Warn("second signal; exiting now")
			os.Exit(1)
		}
	}()
	return ctx, func() { signal.Stop(ch); close(ch); cancel() }
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "meridian:", err)
		os.Exit(1)
	}
}
