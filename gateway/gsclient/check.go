package gsclient

import (
	"fmt"
	"time"

	"github.com/meridian-ops/meridian/schemas"
)

// CheckTransitions verifies a Run's transition sequence (as a state hook
// or a KV watcher saw it) against the state machine of cfg: it starts at
// Connecting/0, follows only legal edges, numbers attempts consecutively,
// announces each retry after the configured backoff (1, 2, 4 … s capped,
// shortened by at most the jitter fraction), stays in order in time, and
// ends in nothing after Failed or Stopped. Tests and the demo call it.
func CheckTransitions(states []schemas.SessionState, cfg Config) error {
	cfg.defaults()
	legal := map[schemas.SessionPhase][]schemas.SessionPhase{
		schemas.PhaseConnecting:    {schemas.PhaseConnected, schemas.PhaseReconnecting, schemas.PhaseFailed, schemas.PhaseStopped},
		schemas.PhaseConnected:     {schemas.PhaseReconnecting, schemas.PhaseDisconnecting, schemas.PhaseFailed},
		schemas.PhaseReconnecting:  {schemas.PhaseConnecting, schemas.PhaseStopped},
		schemas.PhaseDisconnecting: {schemas.PhaseStopped},
	}
	if len(states) == 0 {
		return nil
	}
	if s := states[0]; s.Phase != schemas.PhaseConnecting || s.Attempt != 0 {
		return fmt.Errorf("transition 0: %s/%d, want connecting/0", s.Phase, s.Attempt)
	}
	lastConnecting := uint32(0)
	for i := 1; i < len(states); i++ {
		prev, s := states[i-1], states[i]
		ok := false
		for _, p := range legal[prev.Phase] {
			ok = ok || p == s.Phase
		}
		if !ok {
			return fmt.Errorf("transition %d: %s -> %s is not an edge of the state machine", i, prev.Phase, s.Phase)
		}
		if s.UpdatedAtMs < prev.UpdatedAtMs {
			return fmt.Errorf("transition %d: updated_at %d before the previous %d", i, s.UpdatedAtMs, prev.UpdatedAtMs)
		}
		switch s.Phase {
		case schemas.PhaseReconnecting:
			// After a failed dial the attempt grows by one; after a lost
			// session it restarts at 1 if the session delivered frames.
			if prev.Phase == schemas.PhaseConnecting && s.Attempt != prev.Attempt+1 ||
				prev.Phase == schemas.PhaseConnected && (s.Attempt < 1 || s.Attempt > lastConnecting+1) {
				return fmt.Errorf("transition %d: reconnecting/%d after %s/%d", i, s.Attempt, prev.Phase, prev.Attempt)
			}
			want := cfg.backoff(int(s.Attempt))
			got := time.Duration(s.NextRetryMs-s.UpdatedAtMs) * time.Millisecond
			lo := want - time.Duration(cfg.ReconnectJitter*float64(want)) - time.Millisecond
			if got > want || got < lo || got > cfg.BackoffMax {
				return fmt.Errorf("transition %d: reconnecting/%d retries in %v, want %v (cap %v)", i, s.Attempt, got, want, cfg.BackoffMax)
			}
		case schemas.PhaseConnecting:
			if s.Attempt != prev.Attempt {
				return fmt.Errorf("transition %d: connecting/%d after reconnecting/%d", i, s.Attempt, prev.Attempt)
			}
			lastConnecting = s.Attempt
		case schemas.PhaseConnected:
			if s.SinceMs == 0 {
				return fmt.Errorf("transition %d: connected without since_ms", i)
			}
		case schemas.PhaseFailed:
			if s.Reason == "" {
				return fmt.Errorf("transition %d: failed without a reason", i)
			}
		}
		if prev.Phase == schemas.PhaseStopped || prev.Phase == schemas.PhaseFailed {
			return fmt.Errorf("transition %d: %s after the terminal %s", i, s.Phase, prev.Phase)
		}
	}
	return nil
}
