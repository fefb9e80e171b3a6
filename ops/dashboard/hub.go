package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/meridian-ops/meridian/schemas"
)

var malformedTotal = promauto.NewCounter(prometheus.CounterOpts{
	Name: "meridian_dashboard_malformed_total",
	Help: "Messages or KV values the dashboard could not decode and ignored.",
})

// History is how much time the charts cover, at one sample a second.
const History = 10 * time.Minute

// Sample is one point of the charts.
type Sample struct {
	AtMs            int64   `json:"at_ms"`
	ProcessedPerSec float64 `json:"processed_per_sec"`
	IngestedPerSec  float64 `json:"ingested_per_sec"`
	Emergency       uint64  `json:"emergency"`
	Duplicates      uint64  `json:"duplicates"`
	QueueDepth      int     `json:"queue_depth"`
}

// Dispatch is a command seen on cmd.dispatch.>.
type Dispatch struct {
	AtMs     int64  `json:"at_ms"`
	ID       string `json:"id"`
	Station  string `json:"station"`
	Kind     string `json:"kind"`
	Priority uint8  `json:"priority"`
}

// EmergencyFrame is an emergency frame seen on tlm.routed.emergency.>.
type EmergencyFrame struct {
	AtMs        int64  `json:"at_ms"`
	Station     string `json:"station"`
	SatelliteID uint32 `json:"satellite_id"`
	Sequence    uint64 `json:"sequence"`
	TimestampMs uint64 `json:"timestamp_ms"`
}

// State is what the page shows.
type State struct {
	AtMs       int64                  `json:"at_ms"`
	Pipeline   schemas.PipelineStats  `json:"pipeline"`
	CmdQueue   schemas.CmdQueueStats  `json:"cmdqueue"`
	Store      *schemas.StoreStats    `json:"store,omitempty"`
	Sessions   []schemas.SessionState `json:"sessions"`
	Dispatches []Dispatch             `json:"dispatches"`
	Emergency  []EmergencyFrame       `json:"emergency"`
	Series     []Sample               `json:"series"`
	// Missed counts updates the hub's lossy subscriptions dropped because
	// it fell behind (it says so rather than slow anything down).
	Missed uint64 `json:"missed"`
}

// Hub gathers the state. Run it, then serve Handler.
type Hub struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	mu         sync.Mutex
	pipeline   schemas.PipelineStats
	cmdqueue   schemas.CmdQueueStats
	store      *schemas.StoreStats
	sessions   map[string]schemas.SessionState
	dispatches []Dispatch       // newest last, at most 20
	emergency  []EmergencyFrame // newest last, at most 20
	series     []Sample         // ring, at most History seconds
	missed     uint64
	version    uint64 // bumped on every change; SSE clients compare
	changed    chan struct{}

	lastProcessed, lastIngested uint64 // counters at the previous sample
	malformed, lastMalformed    uint64 // undecodable messages seen; logged once a second
}

// NewHub returns a hub reading from nc.
func NewHub(nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{nc: nc, js: js, log: log, sessions: map[string]schemas.SessionState{}, changed: make(chan struct{})}
}

const recentMax = 20

// Run follows the buckets and subjects until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	err := h.run(ctx)
	if ctx.Err() != nil {
		return nil // asked to stop (possibly while still setting up)
	}
	return err
}

func (h *Hub) run(ctx context.Context) error {
	stats, err := h.js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	sessions, err := h.js.KeyValue(ctx, schemas.BucketSessions)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	sw, err := stats.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("dashboard: watch stats: %w", err)
	}
	defer sw.Stop()
	ssw, err := sessions.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("dashboard: watch sessions: %w", err)
	}
	defer ssw.Stop()

	subs := []*nats.Subscription{}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for subj, fn := range map[string]nats.MsgHandler{
		schemas.DispatchAll: h.onDispatch,
		schemas.RoutedEmerg: h.onEmergency,
	} {
		s, err := h.nc.Subscribe(subj, fn)
		if err != nil {
			return fmt.Errorf("dashboard: subscribe %s: %w", subj, err)
		}
		_ = s.SetPendingLimits(1024, 8<<20) // lossy by design: drop, count, never block
		subs = append(subs, s)
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastDropped int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sw.Updates():
			if !ok {
				return errors.New("dashboard: stats watcher closed")
			}
			if e != nil {
				h.onStats(e)
			}
		case e, ok := <-ssw.Updates():
			if !ok {
				return errors.New("dashboard: sessions watcher closed")
			}
			if e != nil {
				h.onSession(e)
			}
		case now := <-tick.C:
			var dropped int64
			for _, s := range subs {
				d, _ := s.Dropped()
				dropped += int64(d)
			}
			if dropped > lastDropped {
				h.log.Warn("dashboard fell behind; updates missed", "missed", dropped-lastDropped)
				h.mu.Lock()
				h.missed += uint64(dropped - lastDropped)
				h.mu.Unlock()
				lastDropped = dropped
			}
			h.mu.Lock()
			if n := h.malformed - h.lastMalformed; n > 0 {
				h.log.Warn("dashboard: undecodable messages ignored", "count", n)
				h.lastMalformed = h.malformed
			}
			h.mu.Unlock()
			h.sample(now)
		}
	}
}

func (h *Hub) onStats(e jetstream.KeyValueEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	switch e.Key() {
	case schemas.KeyPipelineStats:
		err = decodeEntry(e, &h.pipeline)
	case schemas.KeyCmdQueueStats:
		err = decodeEntry(e, &h.cmdqueue)
	case schemas.KeyStoreStats:
		var s schemas.StoreStats
		if err = decodeEntry(e, &s); err == nil {
			h.store = &s
		}
	default:
		return
	}
	if err != nil {
		h.malformed++
		malformedTotal.Inc()
		h.log.Warn("dashboard: bad stats value", "key", e.Key(), "err", err)
		return
	}
	h.bumpLocked()
}

func (h *Hub) onSession(e jetstream.KeyValueEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(h.sessions, e.Key())
		h.bumpLocked()
		return
	}
	var s schemas.SessionState
	if err := decodeEntry(e, &s); err != nil {
		h.malformed++
		malformedTotal.Inc()
		h.log.Warn("dashboard: bad session value", "key", e.Key(), "err", err)
		return
	}
	h.sessions[e.Key()] = s
	h.bumpLocked()
}

func decodeEntry(e jetstream.KeyValueEntry, v any) error {
	if e.Operation() != jetstream.KeyValuePut {
		return nil
	}
	return schemas.Decode(e.Value(), v)
}

func (h *Hub) onDispatch(m *nats.Msg) {
	var c schemas.Command
	if err := schemas.Unmarshal(m.Data, &c); err != nil {
		h.countMalformed()
		return
	}
	d := Dispatch{AtMs: time.Now().UnixMilli(), ID: c.ID, Station: c.StationID, Kind: string(c.Kind), Priority: c.EffectivePriority()}
	h.mu.Lock()
	h.dispatches = appendRecent(h.dispatches, d)
	h.bumpLocked()
	h.mu.Unlock()
}

func (h *Hub) onEmergency(m *nats.Msg) {
	var b schemas.FrameBatch
	if err := schemas.Unmarshal(m.Data, &b); err != nil {
		h.countMalformed()
		return
	}
	now := time.Now().UnixMilli()
	h.mu.Lock()
	for i := range b.Frames {
		f := &b.Frames[i]
		h.emergency = appendRecent(h.emergency, EmergencyFrame{AtMs: now, Station: f.StationID,
			SatelliteID: f.SatelliteID, Sequence: f.Sequence, TimestampMs: f.TimestampMs})
	}
	h.bumpLocked()
	h.mu.Unlock()
}

func (h *Hub) countMalformed() {
	malformedTotal.Inc()
	h.mu.Lock()
	h.malformed++
	h.mu.Unlock()
}

func appendRecent[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > recentMax {
		s = append(s[:0], s[len(s)-recentMax:]...)
	}
	return s
}

// sample appends a chart point computed from the latest counters.
func (h *Hub) sample(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Sample{AtMs: now.UnixMilli(), Emergency: h.pipeline.EmergencyCount,
		Duplicates: h.pipeline.DuplicatesDropped, QueueDepth: h.cmdqueue.Depth}
	if n := len(h.series); n > 0 {
		prev := h.series[n-1]
		dt := float64(s.AtMs-prev.AtMs) / 1000
		if dt > 0 {
			s.ProcessedPerSec = float64(h.pipeline.FramesProcessed-h.lastProcessed) / dt
			s.IngestedPerSec = float64(h.pipeline.FramesIngested-h.lastIngested) / dt
		}
	}
	h.lastProcessed, h.lastIngested = h.pipeline.FramesProcessed, h.pipeline.FramesIngested
	h.series = append(h.series, s)
	if max := int(History / time.Second); len(h.series) > max {
		h.series = append(h.series[:0], h.series[len(h.series)-max:]...)
	}
	h.bumpLocked()
}

func (h *Hub) bumpLocked() {
	h.version++
	close(h.changed)
	h.changed = make(chan struct{})
}

// Snapshot returns the current state as JSON and its version.
func (h *Hub) Snapshot() ([]byte, uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := State{AtMs: time.Now().UnixMilli(), Pipeline: h.pipeline, CmdQueue: h.cmdqueue, Store: h.store,
		Dispatches: h.dispatches, Emergency: h.emergency, Series: h.series, Missed: h.missed,
		Sessions: make([]schemas.SessionState, 0, len(h.sessions))}
	for _, s := range h.sessions {
		st.Sessions = append(st.Sessions, s)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].StationID < st.Sessions[j].StationID })
	b, err := json.Marshal(st)
	if err != nil { // plain data always marshals
		panic(err)
	}
	return b, h.version, h.changed
}
