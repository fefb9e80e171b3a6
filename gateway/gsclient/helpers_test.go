package gsclient_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"

	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

var epoch = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startSim runs a simulated station until the test ends.
func startSim(t *testing.T, cfg stationsim.Config) *stationsim.Server {
	t.Helper()
	s := stationsim.New(cfg, nil)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// recorder keeps every transition a state hook saw.
type recorder struct {
	mu     sync.Mutex
	states []schemas.SessionState
	on     func(schemas.SessionState) // optional action, run in the client's goroutine
}

func (r *recorder) hook(s schemas.SessionState) {
	r.mu.Lock()
	r.states = append(r.states, s)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(s)
	}
}

func (r *recorder) all() []schemas.SessionState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]schemas.SessionState(nil), r.states...)
}

func (r *recorder) has(p schemas.SessionPhase) bool {
	for _, s := range r.all() {
		if s.Phase == p {
			return true
		}
	}
	return false
}

// phases renders states as "phase/attempt" for comparison.
func phases(states []schemas.SessionState) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s.Phase)
		if s.Phase == schemas.PhaseConnecting || s.Phase == schemas.PhaseReconnecting {
			out[i] += "/" + itoa(int(s.Attempt))
		}
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
