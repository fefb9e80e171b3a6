package system

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/gateway"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/ops/dashboard"
	"github.com/meridian-ops/meridian/ops/sim"
	"github.com/meridian-ops/meridian/workers/archive"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
	"github.com/meridian-ops/meridian/workers/fanin"
	"github.com/meridian-ops/meridian/workers/liveview"
	"github.com/meridian-ops/meridian/workers/processor"
	"github.com/meridian-ops/meridian/workers/router"
	"github.com/meridian-ops/meridian/workers/store"
)

// builder makes one component of a started System.
type builder struct {
	name  string
	build func(s *System) (Component, error)
}

// builders lists every component in start order: those that consume data
// before those that produce it, so shutdown (the reverse) stops ingress
// first and lets the workers drain what is in flight.
var builders = []builder{
	{"store", func(s *System) (Component, error) {
		return withConn(s, "store", func(nc *nats.Conn) (Component, error) {
			sources, err := store.ParseSources(s.cfg.TLESources)
			if err != nil {
				return nil, err
			}
			w := store.New(nc, store.Config{Dir: filepath.Join(s.cfg.DataDir, "oor"), Sources: sources, Logger: s.log})
			s.Store = w
			return w, nil
		})
	}},
	{"archive", func(s *System) (Component, error) {
		return withConn(s, "archive", func(nc *nats.Conn) (Component, error) {
			w, err := archive.NewWorker(nc, archive.Config{Dir: filepath.Join(s.cfg.DataDir, "archive"), Logger: s.log})
			if err != nil {
				return nil, err
			}
			s.Archive = w.Archive()
			return w, nil
		})
	}},
	{"processor", func(s *System) (Component, error) {
		return withConns(s, "processor", func(nc, emergency *nats.Conn) (Component, error) {
			return processor.New(nc, processor.Config{EmergencyConn: emergency, Logger: s.log}), nil
		})
	}},
	{"fanin", func(s *System) (Component, error) {
		return withConns(s, "fanin", func(nc, emergency *nats.Conn) (Component, error) {
			return fanin.New(nc, fanin.Config{EmergencyConn: emergency, Logger: s.log}), nil
		})
	}},
	{"router", func(s *System) (Component, error) {
		return withConns(s, "router", func(nc, emergency *nats.Conn) (Component, error) {
			return router.New(nc, router.Config{EmergencyConn: emergency, Logger: s.log}), nil
		})
	}},
	{"cmdqueue", func(s *System) (Component, error) {
		return withConn(s, "cmdqueue", func(nc *nats.Conn) (Component, error) {
			return cmdqueue.New(nc, cmdqueue.Config{Logger: s.log}), nil
		})
	}},
	{"liveview", func(s *System) (Component, error) {
		return withConn(s, "liveview", func(nc *nats.Conn) (Component, error) {
			return liveview.New(nc, liveview.Config{Logger: s.log}), nil
		})
	}},
	{"dashboard", func(s *System) (Component, error) {
		hub := dashboard.NewHub(s.Bus.Conn, s.Bus.JS, s.log)
		hub.Register(s.HTTP)
		return hub, nil
	}},
	{"handlers", func(s *System) (Component, error) {
		return gateway.NewHandlers(s.Bus, gateway.HandlersConfig{Count: s.cfg.Handlers, Logger: s.log}), nil
	}},
	// Ingress last: it is stopped first, so nothing new enters while the
	// workers drain.
	// gs-client dials the stations of Config.GSStations (none: it idles).
	{"gs-client", func(s *System) (Component, error) {
		if s.cfg.GSStations == "" {
			return idle{}, nil
		}
		cfgs, err := gsclient.LoadFleetFile(s.cfg.GSStations)
		if err != nil {
			return nil, err
		}
		for i := range cfgs {
			if cfgs[i].APIBase == "" {
				cfgs[i].APIBase = s.cfg.TLEAPIBase
			}
		}
		return withConn(s, "gs-client", func(nc *nats.Conn) (Component, error) {
			js, err := bus.NewJetStream(nc)
			if err != nil {
				return nil, err
			}
			return gsclient.NewFleet(js, s.log, cfgs)
		})
	}},
	{"udp", func(s *System) (Component, error) {
		u := gateway.NewUDP(s.Bus, gateway.UDPConfig{Addr: s.cfg.UDPAddr, Logger: s.log})
		if err := u.Listen(); err != nil {
			return nil, err
		}
		s.UDP = u
		return u, nil
	}},
	{"gateway", func(s *System) (Component, error) {
		g := gateway.New(s.Bus, gateway.Config{Addr: s.cfg.GatewayAddr, RequireToken: s.cfg.StationToken,
			DrainTimeout: s.cfg.ShutdownTimeout - time.Second, Logger: s.log})
		if err := g.Listen(); err != nil {
			return nil, err
		}
		s.Gateway = g
		return g, nil
	}},
	// sim drives the system from outside when Config.Demo is set (last, so
	// it is the first to stop).
	{"sim", func(s *System) (Component, error) {
		if !s.cfg.Demo || s.Gateway == nil {
			return idle{}, nil
		}
		cfg := sim.Config{GatewayAddr: s.Gateway.Addr().String(), FrameRate: 50, EmergencyRatio: 0.02, TLERate: 1, CommandRate: 0.5, Logger: s.log}
		if s.UDP != nil {
			cfg.UDPAddr = s.UDP.Addr().String()
		}
		return withConn(s, "sim", func(nc *nats.Conn) (Component, error) { return sim.New(cfg, nc) })
	}},
}

// Components lists the component names in start order.
func Components() []string {
	names := make([]string, len(builders))
	for i, b := range builders {
		names[i] = b.name
	}
	return names
}

// Known reports whether name is a component.
func Known(name string) bool { return slices.Contains(Components(), name) }

// idle is a component with nothing to do (a feature not configured).
type idle struct{}

func (idle) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// withConn gives a component its own NATS connection (so its traffic has
// its own socket and flusher), closed when the component stops.
func withConn(s *System, name string, mk func(nc *nats.Conn) (Component, error)) (Component, error) {
	nc, err := s.Bus.Connect("meridian-" + name)
	if err != nil {
		return nil, err
	}
	c, err := mk(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return Func(func(ctx context.Context) error {
		defer nc.Close()
		return c.Run(ctx)
	}), nil
}

// withConns is withConn for a pipeline stage with an emergency lane: a
// second connection carries that lane, so an emergency frame never waits
// behind routine traffic in a socket's buffers.
func withConns(s *System, name string, mk func(nc, emergency *nats.Conn) (Component, error)) (Component, error) {
	emergency, err := s.Bus.Connect("meridian-" + name + "-emergency")
	if err != nil {
		return nil, err
	}
	c, err := withConn(s, name, func(nc *nats.Conn) (Component, error) { return mk(nc, emergency) })
	if err != nil {
		emergency.Close()
		return nil, err
	}
	return Func(func(ctx context.Context) error {
		defer emergency.Close()
		return c.Run(ctx)
	}), nil
}
