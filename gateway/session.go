package gateway

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// gatewaySeq numbers frames of sessions without mf1 headers. It starts at
// the process's start time in nanoseconds so that sequences stay unique
// across sessions and restarts: the processor's de-duplication key is
// (satellite_id, sequence), and opaque frames all have satellite 0.
var gatewaySeq atomic.Uint64

func init() { gatewaySeq.Store(uint64(time.Now().UnixNano())) }

// session is one station's TCP connection.
type session struct {
	srv  *Server
	conn net.Conn
	num  uint64
	js   jetstream.JetStream
	ejs  jetstream.JetStream // emergency frames
	log  *slog.Logger
	id   string // random, part of every batch's Nats-Msg-Id

	station string
	format  string
	frames  prometheus.Counter
	bytes   prometheus.Counter
	invalid prometheus.Counter

	stopping      atomic.Bool
	drainDeadline atomic.Int64 // unix ns, set by stop
	pubCtx        context.Context
	pubCancel     context.CancelFunc
	pub           *bus.Publisher // routine batches
	epub          *bus.Publisher // emergency frames: a window of their own, never behind routine batches
	failed        atomic.Bool

	emu          sync.Mutex // guards the emergency frames waiting for an ack
	eBody        []byte     // encoded emergency frames not yet published
	eN           int
	eRead        []time.Time // their read times: latency is observed per frame
	eInFlight    int         // emergency batches awaiting their ack
	emergencySeq uint64

	mu        sync.Mutex // guards the batch being built
	body      []byte     // encoded frames of the current batch
	nframes   int
	nbytes    int
	firstRead time.Time // read time of the batch's oldest frame
	batchSeq  uint64
	armedFor  uint64 // batchSeq the linger timer was armed for
	timer     *time.Timer

	writeMu sync.Mutex // serializes command writes on conn
}

func newSession(srv *Server, c net.Conn, num uint64, js, ejs jetstream.JetStream) *session {
	s := &session{srv: srv, conn: c, num: num, js: js, ejs: ejs, id: nuid.Next(),
		log: srv.log.With("remote", c.RemoteAddr().String())}
	s.pubCtx, s.pubCancel = context.WithCancel(context.Background())
	s.timer = time.AfterFunc(time.Hour, s.onLinger)
	s.timer.Stop()
	return s
}

// stop asks the session to finish the frame it is reading and end; the
// read deadline "now" interrupts a read waiting at a frame boundary.
func (s *session) stop(deadline time.Time) {
	s.drainDeadline.Store(deadline.UnixNano())
	s.stopping.Store(true)
	_ = s.conn.SetReadDeadline(time.Now())
	time.AfterFunc(time.Until(deadline), s.pubCancel) // give up on acks at the deadline
}

func (s *session) run(ctx context.Context) {
	defer s.pubCancel()
	defer s.conn.Close()
	s.pub = bus.NewPublisher(s.js, s.srv.cfg.Window, s.log)
	s.epub = bus.NewPublisher(s.ejs, emergencyWindow, s.log)
	sock := &socketReader{r: s.conn, at: time.Now()}
	br := bufio.NewReaderSize(sock, 64<<10)
	fr := newFrameReader(br)
	outcome, dispatchStop := s.readLoop(ctx, fr, br, sock)

	s.mu.Lock()
	s.flushLocked("close")
	s.timer.Stop()
	s.mu.Unlock()
	// No frame is read any more: what waits for an ack goes out now.
	s.emu.Lock()
	s.flushEmergencyLocked()
	s.emu.Unlock()
	for _, p := range []*bus.Publisher{s.epub, s.pub} {
		if err := p.Close(s.pubCtx); err != nil {
			s.log.Error("gateway session closed with unacknowledged batches", "station", s.station, "err", err)
		}
	}
	if dispatchStop != nil {
		dispatchStop()
	}
	sessionsTotal.WithLabelValues(outcome).Inc()
	if s.station != "" {
		s.publishState(schemas.PhaseStopped, outcome)
	}
	s.log.Info("gateway session ended", "station", s.station, "outcome", outcome)
}

// readLoop reads frames until the session ends and says why.
func (s *session) readLoop(ctx context.Context, fr *frameReader, br *bufio.Reader, sock *socketReader) (outcome string, dispatchStop func()) {
	idle := s.srv.cfg.IdleTimeout
	var lastDeadline time.Time
	first := true
	for {
		// Stopping: end at a frame boundary, but only once the bytes already
		// taken off the socket into our buffer are processed too — the
		// gateway drops nothing it has read.
		if s.stopping.Load() && !fr.midFrame() && br.Buffered() == 0 {
			return "shutdown", dispatchStop
		}
		// A frame must arrive within the idle timeout of the gateway being
		// ready for it, so the deadline moves on at frame boundaries — and
		// only matters, and so is only set, when the frame is not already
		// in the buffer.
		if !fr.midFrame() && !nextFrameBuffered(br) {
			if now := time.Now(); !s.stopping.Load() && now.Sub(lastDeadline) > idle/8 {
				_ = s.conn.SetReadDeadline(now.Add(idle))
				lastDeadline = now
				if s.stopping.Load() { // stop() may have run between the check and the set
					_ = s.conn.SetReadDeadline(time.Now())
				}
			}
		}
		p, err := fr.next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				if s.stopping.Load() {
					if !fr.midFrame() && br.Buffered() == 0 {
						return "shutdown", dispatchStop
					}
					// Finish the frame in flight, within the drain deadline.
					_ = s.conn.SetReadDeadline(time.Unix(0, s.drainDeadline.Load()))
					continue
				}
				s.log.Info("gateway session idle; closing", "station", s.station, "idle_timeout", idle, "mid_frame", fr.midFrame())
				return "idle", dispatchStop
			case errors.Is(err, io.EOF):
				return "eof", dispatchStop
			case errors.Is(err, io.ErrUnexpectedEOF):
				protocolErrors.WithLabelValues("truncated").Inc()
				s.log.Warn("gateway session closed mid-frame", "station", s.station)
				return "protocol_error", dispatchStop
			case errors.Is(err, schemas.ErrFrameTooLarge):
				return s.protocolError("too_large", err), dispatchStop
			case errors.Is(err, schemas.ErrFrameEmpty):
				return s.protocolError("empty", err), dispatchStop
			default:
				if s.failed.Load() {
					return "publish_failed", dispatchStop
				}
				return "read_error", dispatchStop
			}
		}
		readAt := sock.at // when the frame's last bytes came off the socket
		if first {
			first = false
			if schemas.IsHello(p) {
				h, err := schemas.ParseHello(p)
				if err != nil {
					return s.protocolError("bad_hello", err), nil
				}
				if tok := s.srv.cfg.RequireToken; tok != "" && h.Token != tok {
					return s.protocolError("bad_token", errors.New("HELLO without the required station token")), nil
				}
				s.begin(ctx, h.Station, h.Format)
				dispatchStop = s.startDispatch(ctx)
				continue
			}
			if s.srv.cfg.RequireToken != "" {
				return s.protocolError("bad_token", errors.New("session must open with HELLO ... token=")), nil
			}
			s.begin(ctx, "gs-"+strconv.FormatUint(s.num, 10)+"@"+s.conn.RemoteAddr().String(), "")
			dispatchStop = s.startDispatch(ctx)
		}
		if schemas.IsGoodbye(p) {
			return "goodbye", dispatchStop
		}
		s.add(p, readAt)
	}
}

// socketReader notes when each read from the station's socket returned.
// Frames taken from one read's bytes share that time, so the clock is read
// per socket read rather than per frame (on this VM a clock read costs
// about as much as decoding a frame).
type socketReader struct {
	r  io.Reader
	at time.Time // when the last read returned
}

func (r *socketReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.at = time.Now()
	return n, err
}

// nextFrameBuffered reports whether br, at a frame boundary, already holds
// the whole next frame, so that reading it does not touch the socket.
func nextFrameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < 4 {
		return false
	}
	h, _ := br.Peek(4) // buffered: no read
	return uint64(br.Buffered()-4) >= uint64(binary.BigEndian.Uint32(h))
}

// protocolError counts and logs a protocol error, tells the station why,
// and ends its session (and only its session).
func (s *session) protocolError(reason string, err error) string {
	protocolErrors.WithLabelValues(reason).Inc()
	s.log.Warn("gateway protocol error; closing session", "station", s.station, "reason", reason, "err", err)
	s.writeMu.Lock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = schemas.WriteFrame(s.conn, []byte("ERROR "+err.Error()))
	s.writeMu.Unlock()
	return "protocol_error"
}

// begin fixes the session's station and registers it.
func (s *session) begin(ctx context.Context, station, format string) {
	s.station, s.format = station, format
	s.log = s.log.With("station", station)
	s.frames = framesTotal.WithLabelValues(station)
	s.bytes = bytesTotal.WithLabelValues(station)
	s.invalid = invalidTotal.WithLabelValues(station)
	now := time.Now().UnixMilli()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := bus.KVPut(rctx, s.srv.sources, schemas.KVKey(station),
		&schemas.Source{SourceID: station, Kind: schemas.KindLiveUplink, StationID: station, RegisteredAtMs: now}); err != nil {
		s.log.Warn("gateway could not register the station's source", "err", err)
	}
	s.publishState(schemas.PhaseConnected, "")
	s.log.Info("gateway session started", "format", format)
}

func (s *session) publishState(phase schemas.SessionPhase, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st := schemas.SessionState{StationID: s.station, Phase: phase, Addr: s.conn.RemoteAddr().String(),
		Origin: "gateway", UpdatedAtMs: time.Now().UnixMilli()}
	if phase == schemas.PhaseConnected {
		st.SinceMs = st.UpdatedAtMs
	} else {
		st.Reason = reason
	}
	if _, err := bus.KVPut(ctx, s.srv.states, schemas.KVKey(s.station), &st); err != nil {
		s.log.Warn("gateway could not publish the session state", "state", phase, "err", err)
	}
}

// add turns one payload into a Frame in the current batch.
func (s *session) add(p []byte, readAt time.Time) {
	f := schemas.Frame{StationID: s.station, SourceID: s.station, SourceKind: schemas.KindLiveUplink,
		Priority: schemas.PriorityRoutine}
	if s.format == "mf1" {
		h, body, err := schemas.DecodeMF1(p)
		if err != nil {
			// Forward it flagged as failed so it is counted where frames are
			// validated; the gateway itself drops nothing it read.
			s.invalid.Inc()
			f.Flags, f.Payload = schemas.FlagCRCFailed, p
			f.Sequence, f.TimestampMs = gatewaySeq.Add(1), uint64(readAt.UnixMilli())
		} else {
			f.TimestampMs, f.Sequence, f.SatelliteID, f.Flags, f.Payload = h.TimestampMs, h.Sequence, h.SatelliteID, h.Flags, body
		}
	} else {
		f.Sequence, f.TimestampMs, f.Payload = gatewaySeq.Add(1), uint64(readAt.UnixMilli()), p
	}
	s.frames.Inc()
	s.bytes.Add(float64(len(p)))
	if f.Flags&schemas.FlagEmergency != 0 {
		f.Priority = schemas.PriorityEmergency
		s.publishEmergency(&f, readAt)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nframes == 0 {
		s.firstRead = readAt
		s.armedFor = s.batchSeq
		s.timer.Reset(s.srv.cfg.Linger)
	}
	s.body = schemas.AppendFrame(s.body, &f)
	s.nframes++
	s.nbytes += len(f.Payload)
	if s.nframes >= s.srv.cfg.MaxBatchFrames || s.nbytes >= s.srv.cfg.MaxBatchBytes {
		s.flushLocked("full")
	}
}

// emergencyWindow is the emergency publisher's window. A session never
// has more than emergencyInFlight batches in it; the margin lets the close
// flush go out whatever is in flight.
const emergencyWindow = 64

// emergencyInFlight is how many emergency batches a station may have
// awaiting their ack before its next emergency frames wait for one.
const emergencyInFlight = 4

// publishEmergency publishes an emergency frame at once on the station's
// emergency lane, through its own window: it is never held for a batch
// nor queued behind the routine batches in flight, and the router takes
// that lane before any routine backlog. Only when emergencyInFlight of the
// station's emergency batches await their ack does it wait, for the first
// of those acks, and leave with the frames read meanwhile in one batch:
// under a flood of emergency frames every message carried one frame, and
// the lane spent more on messages than on frames (1% emergency frames cost
// the pipeline 25-40% of its throughput, ops/perf/pipeline.md "Fourth
// pass"). Routine frames read before it stay in their batch (the processor
// orders frames by time, not by arrival).
func (s *session) publishEmergency(f *schemas.Frame, readAt time.Time) {
	s.emu.Lock()
	defer s.emu.Unlock()
	s.eBody = schemas.AppendFrame(s.eBody, f)
	s.eRead = append(s.eRead, readAt)
	s.eN++
	if s.eInFlight < emergencyInFlight {
		s.flushEmergencyLocked()
	}
}

// flushEmergencyLocked publishes the emergency frames waiting, if any, as
// one batch; its ack publishes those that waited for it.
func (s *session) flushEmergencyLocked() {
	if s.eN == 0 {
		return
	}
	data := schemas.AppendFrameBatchHeader(make([]byte, 0, len(s.eBody)+len(s.station)+32), s.station, s.eN)
	data = append(data, s.eBody...)
	n, reads := s.eN, slices.Clone(s.eRead)
	s.eBody, s.eN, s.eRead = s.eBody[:0], 0, s.eRead[:0]
	s.emergencySeq++
	s.eInFlight++
	msgID := s.station + ":" + s.id + ":e" + strconv.FormatUint(s.emergencySeq, 10)
	// The ack callback runs on the publisher's goroutine, which has freed
	// this batch's slot: the publish below it never waits for the window.
	// It may wait out PublishAsync's retries while NATS reconnects, holding
	// emu: the station's next emergency frame then waits too, which is the
	// backpressure a disconnected bus should give.
	err := s.epub.PublishAsync(s.pubCtx, bus.NewMsg(schemas.IngestEmergencySubject(s.station), data, msgID),
		func(_ *jetstream.PubAck, err error) {
			s.emu.Lock()
			s.eInFlight--
			if err == nil {
				s.flushEmergencyLocked()
			}
			s.emu.Unlock()
			if err != nil {
				batchesTotal.WithLabelValues("emergency", "failed").Inc()
				s.fail(fmt.Errorf("emergency batch %s of %d frames not stored: %w", msgID, n, err))
				return
			}
			batchesTotal.WithLabelValues("emergency", "ok").Inc()
			framesAcked.Add(float64(n))
			now := time.Now()
			for _, at := range reads {
				d := now.Sub(at)
				emergencyAckSeconds.Observe(d.Seconds())
				if on := s.srv.cfg.OnAck; on != nil {
					on(schemas.PriorityEmergency, d)
				}
			}
		})
	if err != nil {
		s.eInFlight--
		batchesTotal.WithLabelValues("emergency", "failed").Inc()
		s.fail(fmt.Errorf("emergency batch %s of %d frames not published: %w", msgID, n, err))
	}
}

func (s *session) onLinger() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nframes > 0 && s.armedFor == s.batchSeq {
		s.flushLocked("linger")
	}
}

// flushLocked publishes the current batch. It blocks while the session's
// window of unacknowledged batches is full: that is the backpressure.
func (s *session) flushLocked(trigger string) {
	if s.nframes == 0 {
		return
	}
	s.timer.Stop()
	data := make([]byte, 0, len(s.body)+len(s.station)+32)
	data = schemas.AppendFrameBatchHeader(data, s.station, s.nframes)
	data = append(data, s.body...)
	s.batchSeq++
	msgID := s.station + ":" + s.id + ":" + strconv.FormatUint(s.batchSeq, 10)
	first, n := s.firstRead, s.nframes
	s.body, s.nframes, s.nbytes = s.body[:0], 0, 0

	err := s.pub.PublishAsync(s.pubCtx, bus.NewMsg(schemas.IngestSubject(s.station), data, msgID),
		func(_ *jetstream.PubAck, err error) {
			if err != nil {
				batchesTotal.WithLabelValues(trigger, "failed").Inc()
				s.fail(fmt.Errorf("batch %s of %d frames not stored: %w", msgID, n, err))
				return
			}
			batchesTotal.WithLabelValues(trigger, "ok").Inc()
			framesAcked.Add(float64(n))
			now := time.Now()
			ackSeconds.WithLabelValues("routine").Observe(now.Sub(first).Seconds())
			if on := s.srv.cfg.OnAck; on != nil {
				on(schemas.PriorityRoutine, now.Sub(first))
			}
		})
	if err != nil {
		batchesTotal.WithLabelValues(trigger, "failed").Inc()
		s.fail(fmt.Errorf("batch %s of %d frames not published: %w", msgID, n, err))
	}
}

// fail ends a session whose frames JetStream would not store: closing the
// connection tells the station, which stops sending into a void.
func (s *session) fail(err error) {
	if s.failed.Swap(true) {
		return
	}
	s.log.Error("gateway session failing: JetStream did not store its frames", "err", err)
	s.conn.Close()
}
