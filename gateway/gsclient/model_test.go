package gsclient_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// sessionModel predicts the client's next transition from what the station
// does: every accepted session delivers 2 frames then closes (a healthy
// session, so backoff and window reset); a refused dial is a failure.
type sessionModel struct {
	failures int
	elapsed  time.Duration // fake time spent failing since the last healthy session
	refusing bool
}

func backoff(n int) time.Duration { return min(time.Second<<(n-1), 30*time.Second) }

// after returns the phase/attempt the client must publish after s.
func (m *sessionModel) after(s schemas.SessionState) string {
	switch s.Phase {
	case schemas.PhaseConnecting:
		if !m.refusing {
			return "connected"
		}
		return m.fail()
	case schemas.PhaseConnected:
		m.failures, m.elapsed = 0, 0
		return m.fail()
	case schemas.PhaseReconnecting:
		m.elapsed += backoff(m.failures)
		return "connecting/" + itoa(m.failures)
	}
	return "?"
}

func (m *sessionModel) fail() string {
	m.failures++
	if m.elapsed >= 5*time.Minute {
		return "failed"
	}
	return "reconnecting/" + itoa(m.failures)
}

// Model-based: random refuse/resume decisions at every retry; each
// transition must be the one the model predicts, and the whole sequence
// must pass CheckTransitions. Every run ends in Failed: after 4 sessions
// the station refuses for good.
func TestStateMachineAgainstModel(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 99))
		sim := startSim(t, stationsim.Config{Rate: -1, DropAfter: 2})
		m := &sessionModel{}
		rec := &recorder{}
		want, connects := "connecting/0", 0
		rec.on = func(s schemas.SessionState) {
			got := phases([]schemas.SessionState{s})[0]
			if got != want {
				t.Errorf("seed %d: transition %d is %s, model predicts %s", seed, len(rec.all()), got, want)
			}
			if s.Phase == schemas.PhaseConnected {
				connects++
			}
			if s.Phase == schemas.PhaseReconnecting { // the station changes its mind before the next dial
				refuse := connects >= 4 || rng.Float64() < 0.6
				if refuse && !m.refusing {
					sim.Refuse()
				} else if !refuse && m.refusing {
					if err := sim.Resume(); err != nil {
						t.Error(err)
					}
				}
				m.refusing = refuse
			}
			want = m.after(s)
		}
		out := make(chan schemas.Frame, 64)
		cfg := gsclient.Config{Station: "gs-model", Addr: sim.Addr()}
		c, err := gsclient.New(nil, bustest.Discard, cfg, gsclient.WithClock(clock.NewAuto(epoch)),
			gsclient.WithOutput(out), gsclient.WithStateHook(rec.hook))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = c.Run(ctx)
		cancel()
		if !errors.Is(err, gsclient.ErrFailed) {
			t.Fatalf("seed %d: Run = %v, want ErrFailed", seed, err)
		}
		if err := gsclient.CheckTransitions(rec.all(), cfg); err != nil {
			t.Fatalf("seed %d: %v\n%v", seed, err, phases(rec.all()))
		}
		if t.Failed() {
			t.Fatalf("seed %d: %v", seed, phases(rec.all()))
		}
		t.Logf("seed %d: %d transitions, %d sessions", seed, len(rec.all()), connects)
	}
}

func TestCheckTransitionsRejects(t *testing.T) {
	st := func(p schemas.SessionPhase, attempt uint32, wait time.Duration) schemas.SessionState {
		return schemas.SessionState{Phase: p, Attempt: attempt, UpdatedAtMs: 1000, NextRetryMs: 1000 + wait.Milliseconds(),
			SinceMs: 1, Reason: "r"}
	}
	cfg := gsclient.Config{}
	good := []schemas.SessionState{st("connecting", 0, 0), st("reconnecting", 1, time.Second), st("connecting", 1, 0),
		st("connected", 0, 0), st("disconnecting", 0, 0), st("stopped", 0, 0)}
	if err := gsclient.CheckTransitions(good, cfg); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]schemas.SessionState{
		"bad start":        {st("connected", 0, 0)},
		"illegal edge":     {st("connecting", 0, 0), st("disconnecting", 0, 0)},
		"attempt skipped":  {st("connecting", 0, 0), st("reconnecting", 2, 2*time.Second)},
		"wrong backoff":    {st("connecting", 0, 0), st("reconnecting", 1, 3*time.Second)},
		"after terminal":   {st("connecting", 0, 0), st("stopped", 0, 0), st("connecting", 0, 0)},
		"connecting moved": {st("connecting", 0, 0), st("reconnecting", 1, time.Second), st("connecting", 3, 0)},
	} {
		if err := gsclient.CheckTransitions(bad, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
