package gsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/gateway/gsclient"
	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/schemas"
)

func issTLE(epoch float64) schemas.Tle {
	return schemas.Tle{NoradID: 25544, IntlDesignator: "98067A", Epoch: epoch, MeanMotion: 15.5,
		Eccentricity: 0.0006, Inclination: 51.64, RAAN: 10, ArgPerigee: 20, MeanAnomaly: 30, BStar: 1e-4,
		ElementSet: 999, RevNumber: 40000, Source: "celestrak", Name: "ISS (ZARYA)"}
}

// tleAPI is a real HTTP test server answering GET /tle/{id} with the
// scripted statuses, then 200 with the TLE of the current epoch.
type tleAPI struct {
	srv      *httptest.Server
	requests atomic.Int32
	script   []func(w http.ResponseWriter) // one per request; 200 after
	epoch    atomic.Value                  // float64
}

func newTLEAPI(t *testing.T, script ...func(w http.ResponseWriter)) *tleAPI {
	a := &tleAPI{script: script}
	a.epoch.Store(26329.5)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(a.requests.Add(1))
		if r.URL.Path != "/tle/25544" {
			http.NotFound(w, r)
			return
		}
		if n <= len(a.script) {
			a.script[n-1](w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(issTLE(a.epoch.Load().(float64)))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func status(code int, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
	}
}

func fetcher(a *tleAPI, clk clock.Clock) *gsclient.TLEFetcher {
	return &gsclient.TLEFetcher{Base: a.srv.URL, HTTP: a.srv.Client(), Clock: clk}
}

// Criterion 4: 503 twice, then 200; the waits between attempts grow
// exponentially with jitter (attempt n waits within [d/2, d], d = 2^(n-1) s).
func TestTLEFetchRetries5xxThenSucceeds(t *testing.T) {
	api := newTLEAPI(t, status(503), status(502))
	clk := clock.NewAuto(epoch)
	tle, err := fetcher(api, clk).Fetch(testCtx(t), 25544)
	if err != nil {
		t.Fatal(err)
	}
	if tle.NoradID != 25544 || tle.Name != "ISS (ZARYA)" {
		t.Fatalf("tle %+v", tle)
	}
	if n := api.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	waits := clk.Requested()
	if len(waits) != 2 || waits[0] < 500*time.Millisecond || waits[0] > time.Second ||
		waits[1] < time.Second || waits[1] > 2*time.Second {
		t.Fatalf("waits %v, want one in [0.5s,1s] then one in [1s,2s]", waits)
	}
}

func TestTLEFetchGivesUpAfterThreeAttempts(t *testing.T) {
	api := newTLEAPI(t, status(503), status(503), status(503), status(503))
	_, err := fetcher(api, clock.NewAuto(epoch)).Fetch(testCtx(t), 25544)
	if !errors.Is(err, gsclient.ErrTLEStatus) {
		t.Fatalf("err %v, want ErrTLEStatus", err)
	}
	if n := api.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

// Criterion 4: a 429 waits exactly what Retry-After asks, not the backoff.
func TestTLEFetchHonoursRetryAfter(t *testing.T) {
	api := newTLEAPI(t, status(429, "Retry-After", "7"))
	clk := clock.NewAuto(epoch)
	if _, err := fetcher(api, clk).Fetch(testCtx(t), 25544); err != nil {
		t.Fatal(err)
	}
	if waits := clk.Requested(); len(waits) != 1 || waits[0] != 7*time.Second {
		t.Fatalf("waits %v, want [7s]", waits)
	}
	if n := api.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// A 429 asking for longer than MaxRetryAfter ends the fetch instead of
// calling back early.
func TestTLEFetchRetryAfterTooLongGivesUp(t *testing.T) {
	api := newTLEAPI(t, status(429, "Retry-After", "3600"))
	clk := clock.NewAuto(epoch)
	_, err := fetcher(api, clk).Fetch(testCtx(t), 25544)
	if !errors.Is(err, gsclient.ErrTLEStatus) || len(clk.Requested()) != 0 || api.requests.Load() != 1 {
		t.Fatalf("err %v, waits %v, requests %d", err, clk.Requested(), api.requests.Load())
	}
}

// Criterion 4: 404 and other 4xx are not retried.
func TestTLEFetchClientErrorsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{{404, gsclient.ErrTLENotFound}, {400, gsclient.ErrTLEStatus}, {403, gsclient.ErrTLEStatus}} {
		api := newTLEAPI(t, status(tc.code))
		clk := clock.NewAuto(epoch)
		_, err := fetcher(api, clk).Fetch(testCtx(t), 25544)
		if !errors.Is(err, tc.want) {
			t.Errorf("%d: err %v, want %v", tc.code, err, tc.want)
		}
		if n := api.requests.Load(); n != 1 || len(clk.Requested()) != 0 {
			t.Errorf("%d: %d requests and waits %v, want one request and no wait", tc.code, n, clk.Requested())
		}
	}
}

// Network errors (here: request timeouts against a server that hangs) are
// retried up to three attempts.
func TestTLEFetchRetriesNetworkErrors(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	hc := srv.Client()
	hc.Timeout = 50 * time.Millisecond
	clk := clock.NewAuto(epoch)
	f := &gsclient.TLEFetcher{Base: srv.URL, HTTP: hc, Clock: clk}
	if _, err := f.Fetch(testCtx(t), 25544); err == nil {
		t.Fatal("fetch from a hanging server succeeded")
	}
	if n := requests.Load(); n != 3 || len(clk.Requested()) != 2 {
		t.Fatalf("%d requests, waits %v; want 3 requests and 2 waits", n, clk.Requested())
	}
}

// A 200 whose body is not a valid Tle for the id is an error, not retried.
func TestTLEFetchBadBody(t *testing.T) {
	api := newTLEAPI(t, func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"norad_id": 1}`)) })
	_, err := fetcher(api, clock.NewAuto(epoch)).Fetch(testCtx(t), 25544)
	if !errors.Is(err, gsclient.ErrTLEBody) || api.requests.Load() != 1 {
		t.Fatalf("err %v after %d requests", err, api.requests.Load())
	}
}

func TestDefaultTLEHTTPClientTimeouts(t *testing.T) {
	if hc := gsclient.NewTLEHTTPClient(); hc.Timeout != 15*time.Second {
		t.Fatalf("overall timeout %v, want 15s", hc.Timeout)
	}
}

func TestTLEFetchStopsOnCancel(t *testing.T) {
	api := newTLEAPI(t, status(503), status(503))
	clk := clock.NewFake(epoch) // waits never fire on their own
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { _, err := fetcher(api, clk).Fetch(ctx, 25544); done <- err }()
	if _, err := clk.WaitPending(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled fetch succeeded")
	}
	if n := api.requests.Load(); n != 1 {
		t.Fatalf("%d requests after cancel during the backoff, want 1", n)
	}
}

func FuzzDecodeTLE(f *testing.F) {
	good, _ := json.Marshal(issTLE(26329.5))
	f.Add(good)
	f.Add([]byte(`{"norad_id":25544,"eccentricity":1.5}`))
	f.Add([]byte(`{"norad_id":25544,"epoch":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tle, err := gsclient.DecodeTLE(b, 25544)
		if err != nil {
			if !errors.Is(err, gsclient.ErrTLEBody) {
				t.Fatalf("error %v does not wrap ErrTLEBody", err)
			}
			return
		}
		if tle.NoradID != 25544 || tle.Validate() != nil {
			t.Fatalf("accepted invalid tle %+v", tle)
		}
	})
}
