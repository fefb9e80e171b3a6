package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says how to reach NATS. The zero value starts an embedded server
// with its store under ./data/nats, listening on 127.0.0.1:4222.
type Config struct {
	// URL of an external NATS cluster (comma-separated). Empty starts an
	// embedded server.
	URL string
	// DataDir holds the embedded server's JetStream store (DataDir/nats) and
	// the process lock. Default "./data".
	DataDir string
	// ListenAddr is the embedded server's client address, so the nats CLI can
	// reach it. Port 0 picks a free port. "-" does not listen at all (the
	// process talks to it in-memory). Default "127.0.0.1:4222".
	ListenAddr string
	// SyncAlways makes the embedded server fsync every write: acked messages
	// then survive power loss, at about 25x lower throughput.
	SyncAlways bool
	// ServerConfig is a nats-server configuration file for the embedded
	// server: accounts, users with permissions, nkeys, TLS — NATS's own
	// format, so operators reuse what they know. Meridian still sets the
	// store directory, JetStream and the listen address (--nats-addr).
	ServerConfig string
	// Name identifies this process's connections to the server.
	Name string
	// ConnectOptions are added to every connection (credentials, TLS).
	ConnectOptions []nats.Option
	// Provision options (replicas, retention). Zero value: single node.
	Provision ProvisionOptions
	Logger    *slog.Logger
}

func (c *Config) withDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:4222"
	}
	if c.Name == "" {
		c.Name = "meridian"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Bus is a live connection to NATS with JetStream, and the embedded server
// when this process runs one.
type Bus struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Server *server.Server // nil when connected to an external cluster
	URL    string         // client URL other connections (and the nats CLI) use

	cfg  Config
	lock *DirLock
	log  *slog.Logger
}

// Open starts (or connects to) NATS, and provisions the contract's streams
// and KV buckets. Close releases everything.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	cfg.withDefaults()
	b := &Bus{cfg: cfg, log: cfg.Logger}
	if cfg.URL == "" {
		if err := b.startEmbedded(); err != nil {
			return nil, err
		}
	} else {
		b.URL = cfg.URL
	}
	nc, err := b.Connect(cfg.Name)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Conn = nc
	b.JS, err = NewJetStream(nc)
	if err != nil {
		b.Close()
		return nil, err
	}
	if err := Provision(ctx, b.JS, cfg.Provision); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) startEmbedded() error {
	lock, err := LockDir(b.cfg.DataDir)
	if err != nil {
		return err
	}
	b.lock = lock
	opts := &server.Options{}
	if b.cfg.ServerConfig != "" {
		var err error
		if opts, err = server.ProcessConfigFile(b.cfg.ServerConfig); err != nil {
			b.lock.Release()
			return fmt.Errorf("bus: NATS server config %s: %w", b.cfg.ServerConfig, err)
		}
	}
	if opts.ServerName == "" {
		opts.ServerName = "meridian"
	}
	opts.JetStream = true
	opts.StoreDir = filepath.Join(b.cfg.DataDir, "nats")
	opts.NoSigs = true // the process handles signals and shuts the server down in order
	opts.NoLog = true
	opts.SyncAlways = opts.SyncAlways || b.cfg.SyncAlways
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20 // large FrameBatches and merge replies fit in one message
	}
	if b.cfg.ListenAddr == "-" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(b.cfg.ListenAddr)
		if err != nil {
			b.lock.Release()
			return fmt.Errorf("bus: --nats-addr %q: %w", b.cfg.ListenAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			b.lock.Release()
			return fmt.Errorf("bus: --nats-addr %q: bad port", b.cfg.ListenAddr)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		b.lock.Release()
		return fmt.Errorf("bus: embedded server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		b.lock.Release()
		return errors.New("bus: embedded NATS server not ready after 10s (is the port in use?)")
	}
	b.Server = ns
	b.URL = ns.ClientURL()
	b.log.Info("embedded NATS started", "url", b.URL, "store", opts.StoreDir, "sync_always", opts.SyncAlways)
	return nil
}

// Connect opens a new connection to the bus's server with Meridian's
// reconnect policy (forever, 250 ms apart with jitter). Components with
// heavy traffic use their own connection so one socket's flusher is not
// shared by everything.
func (b *Bus) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(false),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("nats async error", "conn", name, "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("nats disconnected", "conn", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "conn", name, "url", nc.ConnectedUrlRedacted())
		}),
	}
	opts = append(opts, b.cfg.ConnectOptions...)
	opts = append(opts, extra...)
	if b.Server != nil {
		opts = append(opts, nats.InProcessServer(b.Server))
	}
	url := b.URL
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	return nc, nil
}

// NewJetStream returns a JetStream context with Meridian's publish limits:
// a 5 s ack timeout so no async publish waits forever, and room for every
// Publisher's window.
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(1<<16),
		jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return js, nil
}

// Close flushes the connection, shuts the embedded server down and releases
// the data directory lock.
func (b *Bus) Close() {
	if b.Conn != nil {
		// Components have stopped their subscriptions by now; make sure what
		// is still buffered reaches the server before the socket closes.
		_ = b.Conn.FlushTimeout(2 * time.Second)
		b.Conn.Close()
	}
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
	if b.lock != nil {
		_ = b.lock.Release()
	}
}
