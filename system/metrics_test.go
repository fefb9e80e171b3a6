package system_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/gateway/stationsim"
	"github.com/meridian-ops/meridian/schemas"
)

// documentedMetrics reads the metric names from the README's Metrics table.
func documentedMetrics(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Metrics")
	if start < 0 {
		t.Fatal("README has no Metrics section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	re := regexp.MustCompile("`(meridian_[a-z_]+)")
	var names []string
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(section, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d metrics found in the README", len(names))
	}
	return names
}

// Every metric the README documents is exposed on /metrics, which parses
// with the Prometheus text parser, once the system has done the things the
// metrics count (the simulator plus a few deliberate bad inputs).
func TestEveryDocumentedMetricIsExposed(t *testing.T) {
	st := stationsim.New(stationsim.Config{StationNum: 1, Satellites: []uint32{9}, Rate: 100}, bustest.Discard)
	if err := st.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan error, 1)
	go func() { sdone <- st.Run(sctx) }()
	defer func() { scancel(); <-sdone }()
	fleet := filepath.Join(t.TempDir(), "fleet.json")
	_ = os.WriteFile(fleet, []byte(`{"stations":[{"station":"gs-dial","addr":"`+st.Addr()+`","norad_id":25544}]}`), 0o644)

	cfg := testConfig(t, t.TempDir())
	cfg.Demo, cfg.Handlers, cfg.GSStations, cfg.APIToken = true, 1, fleet, "tok"
	s := start(t, cfg)
	defer stop(t, s)
	nc := bustest.Conn(t, s.Bus)
	base := "http://" + s.HTTP.Addr().String()

	// Deliberate bad inputs and rare events.
	_ = nc.Publish("cmd.dispatch.gs-x", []byte("garbage")) // dashboard malformed
	bad, _ := net.Dial("tcp", s.Gateway.Addr().String())
	_, _ = bad.Write([]byte{0, 0, 0, 0}) // protocol error
	defer bad.Close()
	u, _ := net.Dial("udp", s.UDP.Addr().String())
	_, _ = u.Write([]byte("short")) // malformed datagram
	defer u.Close()
	req, _ := http.NewRequest("POST", base+"/api/commands", strings.NewReader(`{"station_id":"gs-sim-01","kind":"STATUS_REQUEST"}`))
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if resp, err := http.Get(base + "/tle/25544"); err == nil { // no store yet: a 503, counted
		resp.Body.Close()
	}
	js := s.Bus.JS
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = js.Publish(ctx, "cmd.submit.gs-x", []byte("garbage")) // cmdqueue rejection
	dup, _ := schemas.Marshal(&schemas.Command{ID: "dup-1", StationID: "gs-x", Kind: schemas.CmdHousekeeping})
	for range 2 { // the same id twice, without a Nats-Msg-Id: the command queue recognises it
		_, _ = js.Publish(ctx, "cmd.submit.gs-x", dup)
	}
	_, _ = js.Publish(ctx, "tlm.routed.routine.gs-x", []byte("garbage")) // fan-in malformed (bus counter)

	names := documentedMetrics(t)
	var missing []string
	bustest.Eventually(t, 30*time.Second, func() bool {
		if resp, err := http.Get(base + "/tle/25544"); err == nil { // served by oor.tle.get once the store runs
			resp.Body.Close()
		}
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		missing = missing[:0]
		for _, n := range names {
			if _, ok := families[n]; !ok {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	}, "documented metrics not exposed: %v", &missing)
	_ = schemas.StreamIngest
}
