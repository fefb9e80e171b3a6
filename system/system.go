package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/ops"
	"github.com/meridian-ops/meridian/workers/archive"
	"github.com/meridian-ops/meridian/workers/store"
)

// Config configures a Meridian process. Zero values are the documented
// defaults (README "Configuration").
type Config struct {
	DataDir     string // default ./data
	NATSAddr    string // embedded server's client address; default 127.0.0.1:4222
	NATSURL     string // external cluster; empty runs the embedded server
	GatewayAddr string // default 0.0.0.0:7777
	UDPAddr     string // default :7778
	HTTPAddr    string // default 127.0.0.1:8080
	SyncAlways  bool   // embedded server fsyncs every write
	Replicas    int    // stream replicas; 1 (embedded), 3 on a cluster
	// Retention is how long raw and processed telemetry (TLM_INGEST,
	// TLM_PROCESSED, SDA) is kept; default 24 h.
	Retention time.Duration
	// NATSConfig is a nats-server config file for the embedded server
	// (accounts, users, permissions, TLS).
	NATSConfig string
	// Credentials authenticate this process's connections.
	Credentials bus.Credentials
	// GSStations is a gs-client fleet file: stations this process dials.
	GSStations string
	// TLESources are the store's catalog providers, "id:name:priority,..."
	// (store.ParseSources); empty: the five of the course.
	TLESources string
	// TLEAPIBase is where gs-client sessions fetch TLEs (GET /tle/{id});
	// default this process's own ops HTTP address.
	TLEAPIBase string
	// StationToken, when set, is the token every station must present in
	// its HELLO (--require-station-token).
	StationToken string
	// Handlers is how many course-style downstream handler consumers of
	// TLM_INGEST to run (default 0).
	Handlers int
	// APIToken is the bearer token for POST /api/commands; empty disables it.
	APIToken string
	// Demo runs the simulated constellation against this process.
	Demo bool
	// Only limits the process to these components (see Components); empty
	// runs them all. `meridian worker router` is Only: ["router"].
	Only []string
	// ShutdownTimeout bounds the whole ordered shutdown; default 10 s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NATSAddr == "" {
		c.NATSAddr = "127.0.0.1:4222"
	}
	if c.GatewayAddr == "" {
		c.GatewayAddr = "0.0.0.0:7777"
	}
	if c.UDPAddr == "" {
		c.UDPAddr = ":7778"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout < 2*time.Second {
		c.ShutdownTimeout = 2 * time.Second // the gateway drains for ShutdownTimeout-1s
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// System is a started Meridian process.
type System struct {
	Bus     *bus.Bus
	HTTP    *ops.Server
	Gateway *gateway.Server      // nil when not running here
	UDP     *gateway.UDPListener // nil when not running here
	Archive *archive.Archive     // nil when not running here
	Store   *store.Worker        // nil when not running here

	cfg     Config
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	running []*running
	failed  chan error
}

// Start opens the bus and starts the HTTP server and every component.
// It returns once all listeners are bound and the contract is
// provisioned; Ready then succeeds.
func Start(ctx context.Context, cfg Config) (*System, error) {
	cfg.defaults()
	s := &System{cfg: cfg, log: cfg.Logger, failed: make(chan error, 1)}
	copts, err := cfg.Credentials.Options()
	if err != nil {
		return nil, err
	}
	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, ListenAddr: cfg.NATSAddr,
		SyncAlways: cfg.SyncAlways, Name: "meridian", Logger: cfg.Logger, ServerConfig: cfg.NATSConfig,
		ConnectOptions: copts, Provision: bus.ProvisionOptions{Replicas: cfg.Replicas, Retention: cfg.Retention}})
	if err != nil {
		return nil, err
	}
	s.Bus = b
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))

	s.HTTP = ops.NewServer(ops.HTTPConfig{Addr: cfg.HTTPAddr, Ready: b.Ready, Healthy: b.Healthy, Logger: cfg.Logger})
	(&ops.API{NC: b.Conn, JS: b.JS, Token: cfg.APIToken, Logger: cfg.Logger}).Register(s.HTTP)
	if err := s.HTTP.Listen(); err != nil {
		s.cancel()
		b.Close()
		return nil, err
	}
	if s.cfg.TLEAPIBase == "" {
		s.cfg.TLEAPIBase = "http://" + s.HTTP.Addr().String()
	}
	comps, err := s.components()
	if err != nil {
		_ = s.HTTP.Close()
		s.cancel()
		b.Close()
		return nil, err
	}
	s.add(named{"http", s.HTTP})
	for _, c := range comps {
		s.add(c)
	}
	s.log.Info("meridian started", "data_dir", cfg.DataDir, "nats", b.URL, "http", s.HTTP.Addr().String())
	return s, nil
}

// components builds the selected components in start order.
func (s *System) components() ([]named, error) {
	want := map[string]bool{}
	for _, n := range s.cfg.Only {
		if !Known(n) {
			return nil, fmt.Errorf("system: unknown component %q (known: %s)", n, strings.Join(Components(), ", "))
		}
		want[n] = true
	}
	var out []named
	for _, b := range builders {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		c, err := b.build(s)
		if err != nil {
			return nil, fmt.Errorf("system: %s: %w", b.name, err)
		}
		out = append(out, named{b.name, c})
	}
	return out, nil
}

func (s *System) add(n named) {
	s.running = append(s.running, start(s.ctx, n, s.failed))
}

// Ready reports whether the system serves the contract.
func (s *System) Ready(ctx context.Context) error { return s.Bus.Ready(ctx) }

// Failed delivers the first error of a component that failed on its own.
func (s *System) Failed() <-chan error { return s.failed }

// Shutdown stops components in reverse start order within the configured
// deadline (or ctx's, whichever is first), then closes the bus. It returns
// an error listing components that failed or had to be abandoned.
func (s *System) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for i := len(s.running) - 1; i >= 0; i-- {
		r := s.running[i]
		r.cancel()
		select {
		case err := <-r.done:
			// A component asked to stop while still starting may report the
			// cancellation; that is a clean stop, not a failure.
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
		case <-ctx.Done():
			s.log.Warn("shutdown deadline passed; abandoning component", "component", r.name)
			errs = append(errs, fmt.Errorf("%s: did not stop before the shutdown deadline", r.name))
		}
	}
	s.cancel()
	s.Bus.Close()
	s.log.Info("meridian stopped")
	return errors.Join(errs...)
}

// Run starts the system, serves until ctx ends or a component fails, and
// shuts down in order. A clean, signalled stop returns nil.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-s.failed:
		s.log.Error("component failed; shutting down", "err", failure)
	}
	serr := s.Shutdown(context.Background())
	return errors.Join(failure, serr)
}
