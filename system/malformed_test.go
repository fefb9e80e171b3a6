package system_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

// metricValue sums a counter or gauge family over the series whose labels
// include want.
func metricValue(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Garbage on every subject and KV bucket the system consumes is counted
// and logged, terminated where it came through JetStream, and the process
// stays healthy and keeps working.
func TestMalformedInputOnEveryConsumedSubject(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	defer stop(t, s)
	nc := bustest.Conn(t, s.Bus)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	garbage := [][]byte{[]byte("not msgpack"), {0xc1}, {0x81, 0xa1}, {0x92, 0x01}}

	cases := []struct {
		subject string
		js      bool // published through JetStream (else core NATS)
		metric  string
		labels  map[string]string
	}{
		{"cmd.submit.gs-bad", true, "meridian_cmdqueue_commands_rejected_total", map[string]string{"reason": "malformed"}},
		{"tlm.work", true, "meridian_bus_malformed_total", map[string]string{"consumer": "processor"}},
		{"tlm.ingest.gs-bad", true, "meridian_bus_malformed_total", map[string]string{"consumer": "router"}},
		{"tlm.replay.gs-bad", true, "meridian_bus_malformed_total", map[string]string{"consumer": "router-replay"}},
		{"tlm.routed.routine.gs-bad", true, "meridian_bus_malformed_total", map[string]string{"consumer": "fanin"}},
		{"cmd.dispatch.gs-bad", false, "meridian_dashboard_malformed_total", nil},
		{"tlm.routed.emergency.gs-bad", false, "meridian_dashboard_malformed_total", nil},
	}
	for _, c := range cases {
		before := metricValue(t, c.metric, c.labels)
		bustest.Eventually(t, 10*time.Second, func() bool {
			for _, g := range garbage {
				if c.js {
					if _, err := js.Publish(ctx, c.subject, g); err != nil {
						t.Fatalf("%s: %v", c.subject, err)
					}
				} else {
					_ = nc.Publish(c.subject, g)
				}
			}
			return metricValue(t, c.metric, c.labels) >= before+float64(len(garbage))
		}, "garbage on %s not counted in %s", c.subject, c.metric)
	}
	// Garbage KV values too.
	kv, _ := js.KeyValue(ctx, schemas.BucketSessions)
	before := metricValue(t, "meridian_dashboard_malformed_total", nil)
	if _, err := kv.Put(ctx, "gs-bad", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, func() bool { return metricValue(t, "meridian_dashboard_malformed_total", nil) > before },
		"garbage session value not counted")

	// Nothing terminated is left pending for redelivery.
	bustest.Eventually(t, 10*time.Second, func() bool {
		cons, err := js.Consumer(ctx, schemas.StreamCmd, "cmdqueue")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, "malformed commands still pending on CMD")

	// Still healthy, still working.
	resp, err := http.Get("http://" + s.HTTP.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after garbage: %v %v", err, resp)
	}
	resp.Body.Close()
	sub, _ := nc.SubscribeSync("cmd.dispatch.gs-ok")
	_ = nc.Flush()
	ok, _ := schemas.Marshal(&schemas.Command{ID: "after-garbage", StationID: "gs-ok", Kind: schemas.CmdStatusRequest})
	if _, err := js.Publish(ctx, "cmd.submit.gs-ok", ok); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("valid command after garbage not dispatched: %v", err)
	}
}
