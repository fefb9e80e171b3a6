package system

import (
	"context"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/meridian-ops/meridian/ops/dashboard"
	"github.com/meridian-ops/meridian/workers/cmdqueue"
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
	{"cmdqueue", func(s *System) (Component, error) {
		return withConn(s, "cmdqueue", func(nc *nats.Conn) Component {
			return cmdqueue.New(nc, cmdqueue.Config{Logger: s.log})
		})
	}},
	{"dashboard", func(s *System) (Component, error) {
		hub := dashboard.NewHub(s.Bus.Conn, s.Bus.JS, s.log)
		hub.Register(s.HTTP)
		return hub, nil
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

// withConn gives a component its own NATS connection (so its traffic has
// its own socket and flusher), closed when the component stops.
func withConn(s *System, name string, mk func(nc *nats.Conn) Component) (Component, error) {
	nc, err := s.Bus.Connect("meridian-" + name)
	if err != nil {
		return nil, err
	}
	c := mk(nc)
	return Func(func(ctx context.Context) error {
		defer nc.Close()
		return c.Run(ctx)
	}), nil
}
