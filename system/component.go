package system

import (
	"context"
	"fmt"
)

// Component is a long-running part of Meridian. Run blocks until ctx is
// cancelled, then shuts the component down gracefully and returns nil; an
// error before that means the component failed.
type Component interface {
	Run(ctx context.Context) error
}

// named pairs a component with the name used in logs.
type named struct {
	name string
	c    Component
}

// Func adapts a function to Component.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// running is a started component.
type running struct {
	named
	cancel context.CancelFunc
	done   chan error // receives Run's result, then is closed
}

func start(ctx context.Context, n named, failed chan<- error) *running {
	cctx, cancel := context.WithCancel(ctx)
	r := &running{named: n, cancel: cancel, done: make(chan error, 1)}
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%s panicked: %v", n.name, p)
			}
			if err != nil && cctx.Err() == nil {
				// Failed on its own, not because it was asked to stop.
				select {
				case failed <- fmt.Errorf("%s: %w", n.name, err):
				default:
				}
			}
			r.done <- err
			close(r.done)
		}()
		err = n.c.Run(cctx)
	}()
	return r
}
