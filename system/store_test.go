package system_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

// GET /tle/{id} on the ops server is served by the store worker of the
// running system: 404 before the object exists, 200 with the element set
// once a catalog source published it, 503 in a process without a store.
func TestTLEEndpointServedByTheStore(t *testing.T) {
	s := start(t, testConfig(t, t.TempDir()))
	defer stop(t, s)
	base := "http://" + s.HTTP.Addr().String()
	bustest.Eventually(t, 20*time.Second, func() bool { code, _ := get(t, base+"/tle/25544"); return code == 404 },
		"the store never answered 404 for an unknown object")

	u := schemas.Tle{NoradID: 25544, IntlDesignator: "98067A", Epoch: 20177.54743984, MeanMotion: 15.49459678,
		Eccentricity: 0.0002519, Inclination: 51.6448, Source: "18th-sds", Name: "ISS (ZARYA)"}
	data, _ := schemas.Marshal(&u)
	if _, err := s.Bus.JS.Publish(context.Background(), schemas.TLESubject(u.Source), data); err != nil {
		t.Fatal(err)
	}
	var body string
	bustest.Eventually(t, 20*time.Second, func() bool { var code int; code, body = get(t, base+"/tle/25544"); return code == 200 },
		"the published element set was never served")
	var got schemas.Tle
	if err := json.Unmarshal([]byte(body), &got); err != nil || got != u {
		t.Fatalf("GET /tle/25544 = %s (%v), want %+v", body, err, u)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.Only = []string{"router"} // a process without a store worker
	s2 := start(t, cfg)
	defer stop(t, s2)
	if code, _ := get(t, "http://"+s2.HTTP.Addr().String()+"/tle/25544"); code != 503 {
		t.Fatalf("without a store: %d, want 503", code)
	}
}

// The catalog providers are configurable (Config.TLESources, the
// --tle-sources flag): a configured one is ingested, one of the default
// five that is not configured is refused.
func TestConfiguredTLESources(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Only, cfg.TLESources = []string{"store"}, "1:alpha:1,7:beta:9"
	s := start(t, cfg)
	defer stop(t, s)
	for _, u := range []schemas.Tle{{NoradID: 5, Epoch: 24001, MeanMotion: 15, Source: "beta"}, {NoradID: 6, Epoch: 24001, MeanMotion: 15, Source: "leolabs"}} {
		data, _ := schemas.Marshal(&u)
		if _, err := s.Bus.JS.Publish(context.Background(), schemas.TLESubject(u.Source), data); err != nil {
			t.Fatal(err)
		}
	}
	bustest.Eventually(t, 20*time.Second, func() bool {
		st := s.Store.Stats()
		return st.Objects == 1 && st.Extra["updates_refused"] == 1
	}, "beta's update not stored or leolabs' not refused")
	snap, err := s.Store.Catalog().Snapshot(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if e, err := snap.Get(context.Background(), 5); err != nil || e.Source != "beta" {
		t.Fatalf("object 5: %+v %v", e, err)
	}
}
