package system

import (
	"slices"

	"github.com/meridian-ops/meridian/ops/dashboard"
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
