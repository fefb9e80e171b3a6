package gsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meridian-ops/meridian/gateway/gsclient/clock"
	"github.com/meridian-ops/meridian/schemas"
)

// Errors of TLE fetching; callers branch with errors.Is.
var (
	// ErrTLENotFound is returned when the API answers 404 for the NORAD id
	// (not retried: asking again will not create the satellite).
	ErrTLENotFound = errors.New("gsclient: tle not found")
	// ErrTLEStatus wraps any other unsuccessful HTTP status, after the
	// retries that status allows (5xx and 429 are retried, other 4xx not).
	ErrTLEStatus = errors.New("gsclient: tle request failed")
	// ErrTLEBody is returned for a 2xx response whose body is not a valid
	// Tle for the requested id (not retried).
	ErrTLEBody = errors.New("gsclient: bad tle response")
)

// Retry policy of the TLE fetch (course lesson "HTTP clients").
const (
	tleConnectTimeout = 3 * time.Second  // fail fast on an unreachable API
	tleRequestTimeout = 15 * time.Second // the whole request, body included
	maxTLEBody        = 64 << 10
)

// TLEFetcher fetches one satellite's element set from the mission API:
// GET {Base}/tle/{norad_id}, a JSON schemas.Tle. Network errors and 5xx
// are retried with exponential backoff and jitter, 429 waits for its
// Retry-After, other 4xx fail at once. The zero value (plus Base) works.
type TLEFetcher struct {
	Base string // e.g. http://127.0.0.1:8080; no trailing slash needed
	// HTTP defaults to a client with a 3 s connect and a 15 s request timeout.
	HTTP *http.Client
	// Attempts bounds requests per Fetch (default 3).
	Attempts int
	// RetryBase is the first backoff (default 1 s); attempt n waits a
	// random time in [d/2, d] with d = RetryBase·2^(n-1).
	RetryBase time.Duration
	// MaxRetryAfter is the longest Retry-After honoured (default 60 s); a
	// server asking for more ends this fetch, the next refresh tries again.
	MaxRetryAfter time.Duration
	Clock         clock.Clock // default clock.Real
}

// NewTLEHTTPClient returns the HTTP client TLEFetcher uses by default: a
// 3 s connect timeout and a 15 s overall timeout per request.
func NewTLEHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: tleConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: tleRequestTimeout}
}

var defaultTLEHTTP = NewTLEHTTPClient()

// Fetch returns the current element set of noradID.
func (f *TLEFetcher) Fetch(ctx context.Context, noradID uint32) (*schemas.Tle, error) {
	hc, attempts, base, maxRA, clk := f.HTTP, f.Attempts, f.RetryBase, f.MaxRetryAfter, f.Clock
	if hc == nil {
		hc = defaultTLEHTTP
	}
	if attempts <= 0 {
		attempts = 3
	}
	if base <= 0 {
		base = time.Second
	}
	if maxRA <= 0 {
		maxRA = time.Minute
	}
	if clk == nil {
		clk = clock.Real
	}
	url := strings.TrimRight(f.Base, "/") + "/tle/" + strconv.FormatUint(uint64(noradID), 10)
	var lastErr error
	for attempt := 1; ; attempt++ {
		tle, retry, wait, err := f.once(ctx, hc, url, noradID)
		if err == nil {
			tleFetches.WithLabelValues("ok").Inc()
			return tle, nil
		}
		lastErr = err
		if !retry || attempt >= attempts || ctx.Err() != nil {
			break
		}
		if wait < 0 { // no Retry-After: exponential backoff with jitter
			d := base << (attempt - 1)
			wait = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
		} else if wait > maxRA {
			lastErr = fmt.Errorf("%w (server asks to wait %v, more than %v)", err, wait, maxRA)
			break
		}
		tleFetches.WithLabelValues("retried").Inc()
		if err := clock.Sleep(ctx, clk, wait); err != nil {
			break
		}
	}
	tleFetches.WithLabelValues("failed").Inc()
	return nil, fmt.Errorf("gsclient: fetch tle %d: %w", noradID, lastErr)
}

// once makes one request. retry says whether the failure may be retried;
// wait >= 0 is a server-imposed wait (Retry-After), -1 none.
func (f *TLEFetcher) once(ctx context.Context, hc *http.Client, url string, noradID uint32) (tle *schemas.Tle, retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, -1, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, -1, err // network error or timeout
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTLEBody+1))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err != nil {
			return nil, ctx.Err() == nil, -1, err // body cut off: a network error
		}
		tle, err := DecodeTLE(body, noradID)
		return tle, false, -1, err
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, -1, fmt.Errorf("%w: %d", ErrTLENotFound, noradID)
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, true, retryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("%w: HTTP %d", ErrTLEStatus, resp.StatusCode)
	case resp.StatusCode >= 500:
		return nil, true, -1, fmt.Errorf("%w: HTTP %d", ErrTLEStatus, resp.StatusCode)
	default:
		return nil, false, -1, fmt.Errorf("%w: HTTP %d", ErrTLEStatus, resp.StatusCode)
	}
}

// retryAfter parses a Retry-After header (delay-seconds or an HTTP date,
// RFC 9110 §10.2.3); -1 when absent or unparseable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// DecodeTLE decodes the API's JSON body into a validated Tle for noradID.
// Unknown fields are allowed (the API may grow); a missing or different
// norad_id is an error, as is an element out of range. Errors wrap ErrTLEBody.
func DecodeTLE(body []byte, noradID uint32) (*schemas.Tle, error) {
	var t schemas.Tle
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLEBody, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLEBody, err)
	}
	if t.NoradID != noradID {
		return nil, fmt.Errorf("%w: asked for %d, got %d", ErrTLEBody, noradID, t.NoradID)
	}
	return &t, nil
}
