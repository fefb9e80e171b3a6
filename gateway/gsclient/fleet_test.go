package gsclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// A fleet from a config file: one station streams into tlm.ingest, the
// other refuses every dial and is marked Failed after the window, while
// the first keeps running; Run returns nil on shutdown.
func TestFleetFromConfigFile(t *testing.T) {
	b := bustest.New(t)
	up := startSim(t, stationsim.Config{Rate: 500})
	down := startSim(t, stationsim.Config{})
	down.Refuse()
	path := filepath.Join(t.TempDir(), "stations.json")
	cfgJSON := fmt.Sprintf(`{"read_timeout": "30s", "stations": [
		{"station": "gs-up", "addr": %q},
		{"station": "gs-down", "addr": %q}]}`, up.Addr(), down.Addr())
	if err := os.WriteFile(path, []byte(cfgJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgs, err := gsclient.LoadFleetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The auto clock runs gs-down's 5-minute window instantly; gs-up makes
	// no timers (no TLE refresh configured).
	fleet, err := gsclient.NewFleet(b.JS, bustest.Logger(t), cfgs, gsclient.WithClock(clock.NewAuto(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- fleet.Run(ctx) }()
	cl := fleet.Clients()
	bustest.Eventually(t, 10*time.Second, func() bool { return cl[1].State().Phase == schemas.PhaseFailed }, "gs-down not failed")
	ingested(t, b.JS, "gs-up", func(fs []schemas.Frame) bool { return len(fs) >= 20 })
	if cl[0].State().Phase != schemas.PhaseConnected || cl[0].Config().ReadTimeout != 30*time.Second {
		t.Fatalf("gs-up: %+v, read timeout %v", cl[0].State(), cl[0].Config().ReadTimeout)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cl[0].State().Phase != schemas.PhaseStopped || cl[1].State().Phase != schemas.PhaseFailed {
		t.Fatalf("final states %s, %s", cl[0].State().Phase, cl[1].State().Phase)
	}
}

func TestParseFleetFile(t *testing.T) {
	cfgs, err := gsclient.ParseFleetFile([]byte(`{
		"api_base": "http://api:8080", "tle_refresh": "2m",
		"stations": [
			{"station": "gs-a", "addr": "10.0.0.1:5012", "norad_id": 25544},
			{"station": "gs-b", "addr": "10.0.0.2:5012", "norad_id": 43013, "api_base": "http://b:1", "tle_refresh": "30s"}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[0].APIBase != "http://api:8080" || cfgs[0].TLERefresh != 2*time.Minute ||
		cfgs[0].NoradID != 25544 || cfgs[1].APIBase != "http://b:1" || cfgs[1].TLERefresh != 30*time.Second {
		t.Fatalf("%+v", cfgs)
	}
	for _, bad := range []string{
		``, `{}`, `{"stations": []}`,
		`{"stations": [{"station": "a", "addr": "x"}]}`,
		`{"stations": [{"station": "", "addr": "h:1"}]}`,
		`{"stations": [{"station": "a", "addr": "h:1"}, {"station": "a", "addr": "h:2"}]}`,
		`{"stations": [{"station": "a", "addr": "h:1", "typo": 1}]}`,
		`{"tle_refresh": "soon", "stations": [{"station": "a", "addr": "h:1"}]}`,
		`{"stations": [{"station": "a", "addr": "h:1"}]} {}`,
	} {
		if _, err := gsclient.ParseFleetFile([]byte(bad)); !errors.Is(err, gsclient.ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", bad, err)
		}
	}
}

func FuzzParseFleetFile(f *testing.F) {
	f.Add([]byte(`{"api_base":"http://a","tle_refresh":"10m","stations":[{"station":"gs-a","addr":"h:1","norad_id":5}]}`))
	f.Add([]byte(`{"stations":[{"station":"a","addr":"[::1]:7","read_timeout":"1s"}]}`))
	f.Add([]byte(`{"stations":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfgs, err := gsclient.ParseFleetFile(b)
		if err != nil {
			if !errors.Is(err, gsclient.ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range cfgs {
			if err := c.Validate(); err != nil || seen[c.Station] {
				t.Fatalf("accepted %+v (%v)", c, err)
			}
			seen[c.Station] = true
		}
	})
}
