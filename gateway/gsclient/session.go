package gsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/schemas"
)

// errStopping ends a read at a frame boundary once shutdown has begun.
var errStopping = errors.New("gsclient: stopping")

// errStationGoodbye ends a session the station closed with GOODBYE.
var errStationGoodbye = errors.New("gsclient: station said GOODBYE")

// ErrFrameUnfinished is returned when shutdown's deadline passed while a
// frame was still arriving; that frame is lost.
var ErrFrameUnfinished = errors.New("gsclient: shutdown deadline passed mid-frame")

// serve runs one connected session: Connected, source registration, the
// TLE refresher, and the read loop. It returns when the connection is lost
// (stopped false, with the cause) or after a graceful close because ctx
// ended (stopped true). healthy reports that the session delivered at
// least one frame, which resets the reconnect backoff.
func (c *Client) serve(ctx context.Context, conn *net.TCPConn, out chan<- schemas.Frame) (healthy, stopped bool, err error) {
	c.stats.sessions.Add(1)
	c.publish(schemas.SessionState{Phase: schemas.PhaseConnected})
	c.register()

	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if c.cfg.APIBase != "" && c.cfg.NoradID != 0 {
		wg.Go(func() { c.refreshTLE(sctx) })
	}
	r := &frameReader{conn: conn, readTimeout: c.cfg.ReadTimeout, finishTimeout: c.cfg.ShutdownTimeout, mid: &c.midFrame}
	unwatch := context.AfterFunc(ctx, r.stop)
	defer func() {
		unwatch()
		cancel()
		wg.Wait()
	}()

	warnedInvalid := false
	for {
		p, err := r.next()
		if err != nil {
			if errors.Is(err, errStopping) {
				c.goodbye(conn)
				return healthy, true, nil
			}
			conn.Close()
			if r.isStopping() { // the frame in flight could not be finished
				c.log.Warn("shutdown mid-frame", "err", err)
				c.publish(schemas.SessionState{Phase: schemas.PhaseDisconnecting})
				return healthy, true, nil
			}
			return healthy, false, err
		}
		switch {
		case schemas.IsGoodbye(p):
			conn.Close()
			return healthy, false, errStationGoodbye
		case schemas.IsHello(p):
			continue // a station may introduce itself; the config names it already
		}
		c.stats.read.Add(1)
		h, body, derr := schemas.DecodeMF1(p)
		if derr != nil {
			c.stats.invalid.Add(1)
			framesTotal.WithLabelValues(c.cfg.Station, "invalid").Inc()
			if !warnedInvalid {
				c.log.Warn("invalid frame dropped (further ones this session are only counted)", "err", derr)
				warnedInvalid = true
			}
			continue
		}
		healthy = true
		c.forward(out, c.frame(h, body))
	}
}

// frame converts an mf1 frame to the bus Frame, with the current TLE.
func (c *Client) frame(h schemas.MF1Header, body []byte) schemas.Frame {
	prio := schemas.PriorityRoutine
	if h.Flags&schemas.FlagEmergency != 0 {
		prio = schemas.PriorityEmergency
	}
	return schemas.Frame{StationID: c.cfg.Station, SourceID: c.cfg.Station, SourceKind: schemas.KindLiveUplink,
		Priority: prio, Sequence: h.Sequence, TimestampMs: h.TimestampMs, SatelliteID: h.SatelliteID,
		Flags: h.Flags, Payload: append([]byte(nil), body...), Tle: c.tle.Load()}
}

// forward is the non-blocking hand-off (criterion 5): when the publishing
// stage is behind and the hand-off is full, the frame is dropped and
// counted, and the read loop goes on reading.
func (c *Client) forward(out chan<- schemas.Frame, f schemas.Frame) {
	select {
	case out <- f:
		c.stats.forwarded.Add(1)
		framesTotal.WithLabelValues(c.cfg.Station, "forwarded").Inc()
	default:
		d := c.stats.dropped.Add(1)
		framesTotal.WithLabelValues(c.cfg.Station, "dropped").Inc()
		if d&(d-1) == 0 { // warn on the 1st, 2nd, 4th, 8th… drop, not on every one
			c.log.Warn("publishing hand-off full; frame dropped", "dropped_total", d, "queue", cap(out))
		}
	}
}

// goodbye closes a session cleanly: Disconnecting, a GOODBYE frame, a FIN,
// then a short wait for the station's own close so no unread data turns
// the close into a reset (which could discard the GOODBYE at the peer).
func (c *Client) goodbye(conn *net.TCPConn) {
	c.publish(schemas.SessionState{Phase: schemas.PhaseDisconnecting})
	grace := min(time.Second, c.cfg.ShutdownTimeout)
	_ = conn.SetWriteDeadline(time.Now().Add(grace))
	if err := schemas.WriteFrame(conn, schemas.GoodbyeFrame()); err != nil {
		c.log.Warn("GOODBYE not sent", "err", err)
	}
	_ = conn.CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(grace))
	_, _ = io.Copy(io.Discard, conn)
	conn.Close()
}

// frameReader reads length-prefixed frames with a read timeout and a
// shutdown rule: stop interrupts a read waiting at a frame boundary, but a
// frame already begun is read to its end (within finishTimeout).
type frameReader struct {
	conn          net.Conn
	readTimeout   time.Duration
	finishTimeout time.Duration
	mid           *atomic.Bool
	buf           []byte
	hdr           [4]byte

	mu       sync.Mutex // orders stop against arm, so a stop is never overwritten
	stopping bool
	finishBy time.Time
}

// stop begins shutdown: it wakes a read blocked at a frame boundary.
func (r *frameReader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = true
	r.finishBy = time.Now().Add(r.finishTimeout)
	_ = r.conn.SetReadDeadline(time.Now())
}

func (r *frameReader) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// arm sets the deadline for the next read: the read timeout normally, the
// finish deadline mid-frame during shutdown, errStopping at a boundary.
func (r *frameReader) arm(started bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.stopping:
		return r.conn.SetReadDeadline(time.Now().Add(r.readTimeout))
	case !started:
		return errStopping
	case !time.Now().Before(r.finishBy):
		return ErrFrameUnfinished
	default:
		return r.conn.SetReadDeadline(r.finishBy)
	}
}

// fill reads len(p) bytes; started says bytes of this frame were read.
func (r *frameReader) fill(p []byte, started bool) error {
	for n := 0; n < len(p); {
		if err := r.arm(started || n > 0); err != nil {
			return err
		}
		m, err := r.conn.Read(p[n:])
		n += m
		if m > 0 && !started {
			started = true
			r.mid.Store(true)
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && r.isStopping() {
			continue // arm decides: stop at a boundary, finish a begun frame
		}
		if err == io.EOF && (started || n > 0) {
			err = io.ErrUnexpectedEOF // closed mid-frame
		}
		return err
	}
	return nil
}

// next returns the next frame's payload, valid until the next call.
//
//	+--------------------------+------------------------------+
//	| length u32 big-endian    | payload (length bytes)       |
//	+--------------------------+------------------------------+
//
// (the framing of schemas.ReadFrame, read here byte-wise so shutdown can
// tell a frame boundary from the middle of a frame).
func (r *frameReader) next() ([]byte, error) {
	defer r.mid.Store(false)
	if err := r.fill(r.hdr[:], false); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n == 0 {
		return nil, schemas.ErrFrameEmpty
	}
	if n > schemas.MaxFrameSize {
		return nil, fmt.Errorf("%w: %d", schemas.ErrFrameTooLarge, n)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	p := r.buf[:n]
	if err := r.fill(p, true); err != nil {
		return nil, err
	}
	return p, nil
}
