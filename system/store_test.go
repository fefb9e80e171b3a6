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
