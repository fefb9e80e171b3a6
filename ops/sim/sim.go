package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/schemas"
)

// Sources are the five catalog sources of the course, in priority order.
var Sources = []string{"18th-sds", "esa-sst", "leolabs", "exoanalytic", "numerica"}

// Config sizes the simulation. The zero value is the constellation of the
// course at a modest rate: 12 stations × 4 satellites, 100 frames/s per
// station, 1% emergency, 5% of frames relayed by a second station.
type Config struct {
	GatewayAddr string // TCP gateway; empty: no stations
	UDPAddr     string // UDP sensor port; empty: no detections

	Stations       int           // default 12
	SatsPerStation int           // default 4
	FrameRate      float64       // frames per second per station; default 100
	EmergencyRatio float64       // fraction of frames flagged emergency; default 0.01
	OverlapRatio   float64       // fraction of frames also relayed by the next station; default 0.05
	PayloadBytes   int           // telemetry bytes per frame; default 232 (256 with the mf1 header)
	Sensors        int           // UDP sensors; default 4
	DetectionRate  float64       // datagrams per second per sensor; default 20
	TLERate        float64       // TLE updates per second per source (needs NATS); default 2
	CommandRate    float64       // commands per second in total (needs NATS); default 1
	Catalog        int           // objects in the simulated catalog; default 500
	Reconnect      time.Duration // a station drops and redials after this long; 0: never
	Logger         *slog.Logger
}

func (c *Config) defaults() {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Stations <= 0 {
		c.Stations = 12
	}
	if c.SatsPerStation <= 0 {
		c.SatsPerStation = 4
	}
	def(&c.FrameRate, 100)
	def(&c.EmergencyRatio, 0.01)
	def(&c.OverlapRatio, 0.05)
	def(&c.DetectionRate, 20)
	def(&c.TLERate, 2)
	def(&c.CommandRate, 1)
	if c.PayloadBytes <= 0 {
		c.PayloadBytes = 232
	}
	if c.Sensors <= 0 {
		c.Sensors = 4
	}
	if c.Catalog <= 0 {
		c.Catalog = 500
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats counts what the simulator sent.
type Stats struct {
	Frames, Emergency, Relayed, Detections, TLEUpdates, Commands, Reconnects atomic.Uint64
	Commanded                                                                atomic.Uint64 // commands received back on station sessions
	// Skipped counts generated frames a station could not take because it
	// was still writing earlier ones (the gateway pushing back): offered
	// load minus Skipped is what was sent.
	Skipped atomic.Uint64
}

// Sim is a running simulation.
type Sim struct {
	cfg   Config
	nc    *nats.Conn // optional: TLE sources and operators
	js    jetstream.JetStream
	rate  atomic.Uint64 // math.Float64bits of the frames per second per station
	Stats Stats
}

// New prepares a simulation; nc may be nil (then no TLE updates or commands).
func New(cfg Config, nc *nats.Conn) (*Sim, error) {
	cfg.defaults()
	s := &Sim{cfg: cfg, nc: nc}
	s.rate.Store(math.Float64bits(cfg.FrameRate))
	if nc != nil {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		s.js = js
	}
	return s, nil
}

// SetFrameRate changes the frames per second per station of a running (or
// not yet started) simulation; the generator picks it up at its next tick.
func (s *Sim) SetFrameRate(perStation float64) {
	if perStation > 0 {
		s.rate.Store(math.Float64bits(perStation))
	}
}

// FrameRate is the current frames per second per station.
func (s *Sim) FrameRate() float64 { return math.Float64frombits(s.rate.Load()) }

// StationID names simulated station i.
func StationID(i int) string { return fmt.Sprintf("gs-sim-%02d", i+1) }

// Run runs every part until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	if s.cfg.GatewayAddr != "" {
		feeds := make([]chan schemas.MF1Header, s.cfg.Stations)
		for i := range feeds {
			feeds[i] = make(chan schemas.MF1Header, 256)
		}
		run(func(ctx context.Context) error { return s.satellites(ctx, feeds) })
		for i := range s.cfg.Stations {
			run(func(ctx context.Context) error { return s.station(ctx, i, feeds[i]) })
		}
	}
	if s.cfg.UDPAddr != "" {
		run(s.sensors)
	}
	if s.js != nil {
		run(s.tleSources)
		run(s.operators)
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for e := range ch {
		out = append(out, e)
	}
	return out
}

// satellites generates every satellite's frames centrally, so a frame
// relayed by two stations (overlapping passes) has one sequence number.
func (s *Sim) satellites(ctx context.Context, feeds []chan schemas.MF1Header) error {
	n := s.cfg.Stations * s.cfg.SatsPerStation
	seq := make([]uint64, n)
	cur := s.FrameRate()
	tick, perTick := pace(cur * float64(s.cfg.Stations))
	defer tick.Stop()
	r := rand.New(rand.NewPCG(1, 2))
	for {
		select {
		case <-ctx.Done():
			for _, f := range feeds {
				close(f)
			}
			return nil
		case <-tick.C:
		}
		if r := s.FrameRate(); r != cur {
			cur = r
			var interval time.Duration
			interval, perTick = paceOf(cur * float64(s.cfg.Stations))
			tick.Reset(interval)
		}
		now := uint64(time.Now().UnixMilli())
		for range perTick {
			sat := r.IntN(n)
			seq[sat]++
			h := schemas.MF1Header{TimestampMs: now, Sequence: seq[sat], SatelliteID: uint32(sat + 1)}
			if r.Float64() < s.cfg.EmergencyRatio {
				h.Flags |= schemas.FlagEmergency
			}
			st := sat / s.cfg.SatsPerStation
			h.StationID = uint8(st + 1)
			if !offer(feeds[st], h) {
				s.Stats.Skipped.Add(1)
			}
			if r.Float64() < s.cfg.OverlapRatio {
				next := (st + 1) % s.cfg.Stations
				h.StationID = uint8(next + 1)
				if offer(feeds[next], h) {
					s.Stats.Relayed.Add(1)
				}
			}
		}
	}
}

// offer hands a frame to a station without blocking the generator; a
// station that cannot keep up (backpressure from the gateway) skips frames
// as a real pass would lose them, rather than stall every other station.
func offer(ch chan schemas.MF1Header, h schemas.MF1Header) bool {
	select {
	case ch <- h:
		return true
	default:
		return false
	}
}

// pace returns a ticker and how many events each tick carries for a rate
// in events per second (ticks at most every 10 ms).
func pace(rate float64) (*time.Ticker, int) {
	interval, per := paceOf(rate)
	return time.NewTicker(interval), per
}

// paceOf is pace's tick interval and events per tick.
func paceOf(rate float64) (time.Duration, int) {
	if rate <= 0 {
		rate = 1
	}
	interval := time.Duration(float64(time.Second) / rate)
	per := 1
	if interval < 10*time.Millisecond {
		per = int(rate/100 + 0.5)
		interval = 10 * time.Millisecond
	}
	return interval, per
}

// station dials the gateway, says HELLO and streams its feed; it redials
// after errors (and every Reconnect period when set).
func (s *Sim) station(ctx context.Context, i int, feed <-chan schemas.MF1Header) error {
	id := StationID(i)
	body := make([]byte, s.cfg.PayloadBytes)
	for j := range body {
		body[j] = byte(i + j)
	}
	for ctx.Err() == nil {
		err := s.session(ctx, id, feed, body)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.cfg.Logger.Debug("sim station session ended", "station", id, "err", err)
		}
		s.Stats.Reconnects.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

func (s *Sim) session(ctx context.Context, id string, feed <-chan schemas.MF1Header, body []byte) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.GatewayAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Commands come back on the session; count them.
	go func() {
		r := bufio.NewReader(conn)
		var buf []byte
		for {
			p, err := schemas.ReadFrame(r, buf)
			if err != nil {
				return
			}
			buf = p
			s.Stats.Commanded.Add(1)
		}
	}()
	w := bufio.NewWriterSize(conn, 64<<10)
	if err := schemas.WriteFrame(w, []byte(schemas.Hello{Station: id, Format: "mf1"}.String())); err != nil {
		return err
	}
	var drop <-chan time.Time
	if s.cfg.Reconnect > 0 {
		t := time.NewTimer(s.cfg.Reconnect)
		defer t.Stop()
		drop = t.C
	}
	frame := make([]byte, 0, 4+schemas.MF1HeaderSize+len(body))
	flush := time.NewTicker(5 * time.Millisecond)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = schemas.WriteFrame(w, schemas.GoodbyeFrame())
			return w.Flush()
		case <-drop:
			_ = w.Flush()
			return nil // drop the connection without GOODBYE, as a lost link would
		case <-flush.C:
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := w.Flush(); err != nil {
				return err
			}
		case h, ok := <-feed:
			if !ok { // the generator stopped: the simulation is ending
				_ = schemas.WriteFrame(w, schemas.GoodbyeFrame())
				return w.Flush()
			}
			frame = schemas.AppendFrameHeader(frame[:0], schemas.MF1HeaderSize+len(body))
			frame = schemas.AppendMF1(frame, h, body)
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := w.Write(frame); err != nil {
				return err
			}
			s.Stats.Frames.Add(1)
			if h.Flags&schemas.FlagEmergency != 0 {
				s.Stats.Emergency.Add(1)
				if err := w.Flush(); err != nil { // emergency frames leave at once
					return err
				}
			}
		}
	}
}

// sensors send UDP detections.
func (s *Sim) sensors(ctx context.Context) error {
	conn, err := net.Dial("udp", s.cfg.UDPAddr)
	if err != nil {
		return fmt.Errorf("sim: udp: %w", err)
	}
	defer conn.Close()
	tick, per := pace(s.cfg.DetectionRate * float64(s.cfg.Sensors))
	defer tick.Stop()
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 0, schemas.DetectionSize)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for range per {
			d := schemas.Detection{SensorID: uint32(r.IntN(s.cfg.Sensors) + 1), Azimuth: float32(r.Float64() * 360),
				Elevation: float32(r.Float64()*80 + 5), RangeKm: float32(400 + r.Float64()*1600), TimestampMs: uint64(time.Now().UnixMilli())}
			if _, err := conn.Write(schemas.AppendDetection(buf[:0], d)); err == nil {
				s.Stats.Detections.Add(1)
			}
		}
	}
}

// tleSources publish element-set updates for the catalog from each of the
// five sources; their epochs differ slightly so the merge has conflicts.
func (s *Sim) tleSources(ctx context.Context) error {
	tick, per := pace(s.cfg.TLERate * float64(len(Sources)))
	defer tick.Stop()
	r := rand.New(rand.NewPCG(5, 6))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for range per {
			src := Sources[r.IntN(len(Sources))]
			t := SyntheticTle(uint32(r.IntN(s.cfg.Catalog)+1), time.Now(), r)
			t.Source = src
			data, err := schemas.Marshal(&t)
			if err != nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = s.js.Publish(pctx, schemas.TLESubject(src), data)
			cancel()
			if err == nil {
				s.Stats.TLEUpdates.Add(1)
			}
		}
	}
}

// commandKind draws an operator's command: mostly housekeeping and status
// requests, some repoints, an occasional pass abort, a rare safe mode.
func commandKind(r *rand.Rand) schemas.CommandKind {
	switch n := r.IntN(100); {
	case n < 50:
		return schemas.CmdHousekeeping
	case n < 80:
		return schemas.CmdStatusRequest
	case n < 95:
		return schemas.CmdRepoint
	case n < 99:
		return schemas.CmdAbortPass
	default:
		return schemas.CmdSafeMode
	}
}

// operators submit telecommands, mostly routine, sometimes urgent.
func (s *Sim) operators(ctx context.Context) error {
	tick, per := pace(s.cfg.CommandRate)
	defer tick.Stop()
	r := rand.New(rand.NewPCG(7, 8))
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for range per {
			n++
			k := commandKind(r)
			c := schemas.Command{ID: fmt.Sprintf("sim-%d-%d", time.Now().UnixNano(), n), StationID: StationID(r.IntN(s.cfg.Stations)),
				Kind: k, IssuedAtNs: time.Now().UnixNano()}
			if k == schemas.CmdRepoint {
				az, el := r.Float64()*359, r.Float64()*85
				c.Azimuth, c.Elevation = &az, &el
			}
			data, err := schemas.Marshal(&c)
			if err != nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = s.js.Publish(pctx, schemas.SubmitSubject(c.StationID), data, jetstream.WithMsgID(c.ID))
			cancel()
			if err == nil {
				s.Stats.Commands.Add(1)
			}
		}
	}
}

// SyntheticTle returns a plausible LEO element set for id at time at.
func SyntheticTle(id uint32, at time.Time, r *rand.Rand) schemas.Tle {
	yday := float64(at.YearDay()) + float64(at.Hour())/24 + float64(at.Minute())/1440 + float64(at.Second())/86400
	return schemas.Tle{
		NoradID: id, IntlDesignator: fmt.Sprintf("%02d%03dA", at.Year()%100, id%1000),
		Epoch:      float64(at.Year()%100)*1000 + yday - r.Float64()*0.01,
		MeanMotion: 14.5 + r.Float64()*1.5, Eccentricity: r.Float64() * 0.01, Inclination: 40 + r.Float64()*60,
		RAAN: r.Float64() * 360, ArgPerigee: r.Float64() * 360, MeanAnomaly: r.Float64() * 360,
		BStar: r.Float64() * 1e-4, ElementSet: uint16(r.IntN(999) + 1), RevNumber: uint32(r.IntN(90000)),
	}
}
