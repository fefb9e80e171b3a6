package gsclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Config configures one station's client. Station and Addr are required;
// every other zero value means the documented default.
type Config struct {
	Station string // station id: KV key, subject token (via schemas.Token), frames' station_id and source_id
	Addr    string // host:port the station listens on
	// NoradID is the satellite whose TLE rides along on forwarded frames;
	// 0 (or an empty APIBase) disables TLE refresh.
	NoradID uint32
	APIBase string // mission API base URL, e.g. http://127.0.0.1:8080 (GET {APIBase}/tle/{NoradID})
	// TLERefresh is the TLE refresh interval while connected (default 10 min).
	TLERefresh time.Duration
	// ReadTimeout ends a session whose station sent nothing for this long
	// (default 60 s); the client then reconnects.
	ReadTimeout time.Duration
	DialTimeout time.Duration // default 5 s
	// Reconnect backoff: BackoffInitial·2^(n-1) before the n-th retry,
	// capped at BackoffMax (defaults 1 s and 30 s). ReconnectJitter in
	// [0,1) shortens each wait by up to that fraction (default 0: exact).
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	ReconnectJitter float64
	// FailAfter is how long reconnection may keep failing before the
	// station is marked Failed and the client stops (default 5 min).
	FailAfter time.Duration
	// QueueSize is the hand-off's capacity in frames between the read loop
	// and the publishing stage (default 1024); a full hand-off drops.
	QueueSize int
	BatchSize int           // frames per FrameBatch at most (default 256)
	Linger    time.Duration // how long a partial batch waits for more frames (default 5 ms)
	// ShutdownTimeout bounds, from the moment ctx ends, finishing the frame
	// being read, the GOODBYE and the final publishes together (default 5 s).
	ShutdownTimeout time.Duration
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TLERefresh, 10*time.Minute)
	def(&c.ReadTimeout, 60*time.Second)
	def(&c.DialTimeout, 5*time.Second)
	def(&c.BackoffInitial, time.Second)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.FailAfter, 5*time.Minute)
	def(&c.Linger, 5*time.Millisecond)
	def(&c.ShutdownTimeout, 5*time.Second)
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.ReconnectJitter < 0 || c.ReconnectJitter >= 1 {
		c.ReconnectJitter = 0
	}
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("gsclient: bad config")

// Validate checks the required fields.
func (c *Config) Validate() error {
	if c.Station == "" {
		return fmt.Errorf("%w: station is required", ErrConfig)
	}
	if len(c.Station) > 64 {
		return fmt.Errorf("%w: station id %q longer than 64 bytes", ErrConfig, c.Station)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: station %s: addr %q: %v", ErrConfig, c.Station, c.Addr, err)
	}
	return nil
}

// backoff is the wait before the n-th retry (n >= 1), without jitter.
func (c *Config) backoff(n int) time.Duration {
	d := c.BackoffInitial
	for i := 1; i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}

// Duration is a time.Duration written as a Go duration string ("10m",
// "1m30s") in config files.
type Duration time.Duration

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"10m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// FleetFile is the config file of a multi-station client (JSON):
//
//	{
//	  "api_base": "http://127.0.0.1:8080",
//	  "tle_refresh": "10m",
//	  "read_timeout": "60s",
//	  "stations": [
//	    {"station": "gs-svalbard", "addr": "10.0.0.7:5012", "norad_id": 25544},
//	    {"station": "gs-awarua",   "addr": "10.0.1.9:5012", "norad_id": 43013,
//	     "api_base": "http://api-b:8080", "tle_refresh": "2m"}
//	  ]
//	}
//
// Top-level api_base, tle_refresh and read_timeout are defaults a station
// may override. Unknown keys are an error, so typos surface.
type FleetFile struct {
	APIBase     string         `json:"api_base,omitempty"`
	TLERefresh  Duration       `json:"tle_refresh,omitempty"`
	ReadTimeout Duration       `json:"read_timeout,omitempty"`
	Stations    []StationEntry `json:"stations"`
}

// StationEntry is one station of a FleetFile.
type StationEntry struct {
	Station     string   `json:"station"`
	Addr        string   `json:"addr"`
	NoradID     uint32   `json:"norad_id,omitempty"`
	APIBase     string   `json:"api_base,omitempty"`
	TLERefresh  Duration `json:"tle_refresh,omitempty"`
	ReadTimeout Duration `json:"read_timeout,omitempty"`
}

// ParseFleetFile decodes a FleetFile and returns one validated Config per
// station. Errors wrap ErrConfig.
func ParseFleetFile(data []byte) ([]Config, error) {
	var ff FleetFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrConfig)
	}
	if len(ff.Stations) == 0 {
		return nil, fmt.Errorf("%w: no stations", ErrConfig)
	}
	seen := map[string]bool{}
	out := make([]Config, 0, len(ff.Stations))
	for i, s := range ff.Stations {
		c := Config{Station: s.Station, Addr: s.Addr, NoradID: s.NoradID, APIBase: ff.APIBase,
			TLERefresh: time.Duration(ff.TLERefresh), ReadTimeout: time.Duration(ff.ReadTimeout)}
		if s.APIBase != "" {
			c.APIBase = s.APIBase
		}
		if s.TLERefresh > 0 {
			c.TLERefresh = time.Duration(s.TLERefresh)
		}
		if s.ReadTimeout > 0 {
			c.ReadTimeout = time.Duration(s.ReadTimeout)
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("stations[%d]: %w", i, err)
		}
		if seen[c.Station] {
			return nil, fmt.Errorf("%w: stations[%d]: station %q listed twice", ErrConfig, i, c.Station)
		}
		seen[c.Station] = true
		out = append(out, c)
	}
	return out, nil
}

// LoadFleetFile reads and parses a FleetFile.
func LoadFleetFile(path string) ([]Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gsclient: read config: %w", err)
	}
	cfgs, err := ParseFleetFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfgs, nil
}
