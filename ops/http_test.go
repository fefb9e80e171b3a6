package ops_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/ops"
)

func TestProbes(t *testing.T) {
	var readyErr error
	var healthErr error
	s := ops.NewServer(ops.HTTPConfig{
		Ready:   func(context.Context) error { return readyErr },
		Healthy: func() error { return healthErr },
		Logger:  bustest.Discard,
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	code := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code("/readyz") != 200 || code("/healthz") != 200 {
		t.Fatal("probes not 200 when ready and healthy")
	}
	readyErr = errors.New("streams missing")
	healthErr = errors.New("NATS down")
	if code("/readyz") != 503 || code("/healthz") != 503 {
		t.Fatal("probes not 503 when not ready / unhealthy")
	}
	if code("/nope") != 404 {
		t.Fatal("unknown path not 404")
	}
}

// /metrics parses with the Prometheus text parser and carries the
// documented bus metrics once the bus has done some work.
func TestMetricsParse(t *testing.T) {
	b := bustest.New(t)
	p := bus.NewPublisher(b.JS, 4, nil)
	if _, err := p.Publish(context.Background(), bus.NewMsg("tlm.ingest.gs-m", []byte{0x80}, "")); err != nil {
		t.Fatal(err)
	}
	_ = p.Close(context.Background())

	s := ops.NewServer(ops.HTTPConfig{Logger: bustest.Discard})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"meridian_bus_publish_total", "meridian_bus_publish_ack_seconds",
		"meridian_bus_publish_inflight", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
}
