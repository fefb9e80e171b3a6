package cmdqueue

import (
	"context"
	"sync"
)

// Gate holds the dispatcher back: while it is held the dispatcher pops
// nothing, so submitted commands pile up in the queue (in priority order)
// until Release. Operators use it for a maintenance window; tests use it
// to build a backlog. A nil *Gate is always open.
//
// The dispatcher checks the gate before each Pop, so a dispatcher already
// waiting on an empty queue when Hold is called dispatches one more
// command; create the gate held (NewGate(true)) to hold from the start.
type Gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

// NewGate returns a gate, held or open.
func NewGate(held bool) *Gate {
	g := &Gate{open: make(chan struct{})}
	if !held {
		close(g.open)
	}
	return g
}

// Hold stops the dispatcher before its next Pop.
func (g *Gate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default: // already held
	}
}

// Release lets the dispatcher run.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// Held reports whether the gate is held.
func (g *Gate) Held() bool {
	if g == nil {
		return false
	}
	select {
	case <-g.ch():
		return false
	default:
		return true
	}
}

// Wait returns nil at once when the gate is open, otherwise when it is
// released, or ctx.Err() when ctx ends first.
func (g *Gate) Wait(ctx context.Context) error {
	if g == nil {
		return nil
	}
	ch := g.ch()
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gate) ch() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}
