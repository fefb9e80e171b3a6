package processor

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/meridian-ops/meridian/schemas"
)

// A minimal msgpack reader over a byte slice for the one message shape the
// processor consumes (schemas.FrameBatch). It returns sub-slices of its
// input instead of allocating, accepts every integer width and str or bin
// payloads, skips unknown keys, and never panics on hostile input.

var errTruncated = errors.New("truncated msgpack")

type reader struct {
	b []byte
	i int
}

func (r *reader) next() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.i < n {
		return nil, errTruncated
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p, nil
}

func (r *reader) be(n int) (uint64, error) {
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	default:
		return binary.BigEndian.Uint64(p), nil
	}
}

func (r *reader) mapLen() (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), nil
	case c == 0xde:
		n, err := r.be(2)
		return int(n), err
	case c == 0xdf:
		n, err := r.be(4)
		return int(n), err
	}
	return 0, fmt.Errorf("expected a map, got code 0x%02x", c)
}

func (r *reader) arrayLen() (int, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), nil
	case c == 0xdc:
		n, err := r.be(2)
		return int(n), err
	case c == 0xdd:
		n, err := r.be(4)
		return int(n), err
	case c == 0xc0:
		return 0, nil
	}
	return 0, fmt.Errorf("expected an array, got code 0x%02x", c)
}

// bytes reads a str, bin or nil value.
func (r *reader) bytes() ([]byte, error) {
	c, err := r.next()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n, err = r.be(1)
	case c == 0xda || c == 0xc5:
		n, err = r.be(2)
	case c == 0xdb || c == 0xc6:
		n, err = r.be(4)
	case c == 0xc0:
		return nil, nil
	default:
		return nil, fmt.Errorf("expected str or bin, got code 0x%02x", c)
	}
	if err != nil {
		return nil, err
	}
	return r.take(int(n))
}

// uint reads a non-negative integer of any width.
func (r *reader) uint() (uint64, error) {
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	case c >= 0xd0 && c <= 0xd3:
		v, err := r.be(1 << (c - 0xd0))
		if err != nil {
			return 0, err
		}
		bits := uint(8) << (c - 0xd0)
		if bits < 64 && v>>(bits-1) != 0 || bits == 64 && int64(v) < 0 {
			return 0, errors.New("negative integer")
		}
		return v, nil
	}
	return 0, fmt.Errorf("expected an unsigned integer, got code 0x%02x", c)
}

// maxDepth bounds nesting in skipped values so hostile input cannot blow
// the stack.
const maxDepth = 32

// skip steps over one value of any type.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("msgpack nested too deeply")
	}
	c, err := r.next()
	if err != nil {
		return err
	}
	var n uint64
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0x80 && c <= 0x8f:
		return r.skipN(2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return r.skipN(int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		_, err = r.take(int(c & 0x1f))
		return err
	case c == 0xcc || c == 0xd0:
		_, err = r.take(1)
	case c == 0xcd || c == 0xd1:
		_, err = r.take(2)
	case c == 0xce || c == 0xd2 || c == 0xca:
		_, err = r.take(4)
	case c == 0xcf || c == 0xd3 || c == 0xcb:
		_, err = r.take(8)
	case c == 0xc4 || c == 0xd9:
		n, err = r.be(1)
		if err == nil {
			_, err = r.take(int(n))
		}
	case c == 0xc5 || c == 0xda:
		n, err = r.be(2)
		if err == nil {
			_, err = r.take(int(n))
		}
	case c == 0xc6 || c == 0xdb:
		n, err = r.be(4)
		if err == nil {
			_, err = r.take(int(n))
		}
	case c == 0xdc:
		n, err = r.be(2)
		if err == nil {
			err = r.skipN(int(n), depth)
		}
	case c == 0xdd:
		n, err = r.be(4)
		if err == nil {
			err = r.skipN(int(n), depth)
		}
	case c == 0xde:
		n, err = r.be(2)
		if err == nil {
			err = r.skipN(2*int(n), depth)
		}
	case c == 0xdf:
		n, err = r.be(4)
		if err == nil {
			err = r.skipN(2*int(n), depth)
		}
	case c >= 0xd4 && c <= 0xd8: // fixext 1..16
		_, err = r.take(1 + 1<<(c-0xd4))
	case c >= 0xc7 && c <= 0xc9: // ext 8/16/32
		n, err = r.be(1 << (c - 0xc7))
		if err == nil {
			_, err = r.take(int(n) + 1)
		}
	default:
		return fmt.Errorf("invalid msgpack code 0x%02x", c)
	}
	return err
}

func (r *reader) skipN(n, depth int) error {
	if n > len(r.b)-r.i { // every value takes at least one byte
		return errTruncated
	}
	for range n {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// Source kinds and priorities as codes.
const (
	kindNone uint8 = iota
	kindLive
	kindReplay
	kindSensor
)

const (
	prioNone uint8 = iota
	prioRoutine
	prioEmergency
)

var (
	kindNames = [...]string{"", "live_uplink", "archived_replay", "sensor"}
	prioNames = [...]string{"", "routine", "emergency"}
)

// decode parses a FrameBatch message into b (reset first). Every error
// wraps schemas.ErrMalformed.
func (b *Batch) decode(msg []byte) error {
	b.reset()
	r := reader{b: msg}
	if err := b.decodeBatch(&r); err != nil {
		return fmt.Errorf("%w: frame batch: %v", schemas.ErrMalformed, err)
	}
	if r.i != len(msg) {
		return fmt.Errorf("%w: frame batch: %d trailing bytes", schemas.ErrMalformed, len(msg)-r.i)
	}
	if len(b.Headers) == 0 {
		return fmt.Errorf("%w: %w", schemas.ErrMalformed, schemas.ErrNoFrames)
	}
	return nil
}

func (b *Batch) decodeBatch(r *reader) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.bytes()
		if err != nil {
			return err
		}
		switch string(k) {
		case "station_id":
			s, err := r.bytes()
			if err != nil {
				return err
			}
			b.station = b.ref(s)
		case "frames":
			m, err := r.arrayLen()
			if err != nil {
				return err
			}
			if m > schemas.MaxFramesPerBatch {
				return schemas.ErrTooManyFrames
			}
			for range m {
				if err := b.decodeFrame(r); err != nil {
					return err
				}
			}
		default:
			if err := r.skip(0); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Batch) decodeFrame(r *reader) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	var (
		h                           FrameHeader
		station, source, payload, t ref
		kind, prio                  uint8
	)
	for range n {
		k, err := r.bytes()
		if err != nil {
			return err
		}
		switch string(k) {
		case "station_id", "source_id", "source_kind", "priority", "payload":
			v, err := r.bytes()
			if err != nil {
				return err
			}
			switch string(k) {
			case "station_id":
				station = b.ref(v)
			case "source_id":
				source = b.ref(v)
			case "payload":
				if len(v) > schemas.MaxFrameSize {
					return fmt.Errorf("payload of %d bytes", len(v))
				}
				payload = b.ref(v)
				h.ByteCount = uint16(min(len(v), 0xffff))
			case "source_kind":
				if kind = kindCode(v); kind == kindNone && len(v) > 0 {
					return fmt.Errorf("unknown source_kind %q", v)
				}
			case "priority":
				if prio = prioCode(v); prio == prioNone && len(v) > 0 {
					return fmt.Errorf("unknown priority %q", v)
				}
			}
		case "sequence", "timestamp_ms", "satellite_id", "flags":
			v, err := r.uint()
			if err != nil {
				return err
			}
			switch string(k) {
			case "sequence":
				h.Sequence = v
			case "timestamp_ms":
				h.TimestampMs = v
			case "satellite_id":
				if v > 0xffffffff {
					return errors.New("satellite_id out of range")
				}
				h.SatelliteID = uint32(v)
			case "flags":
				if v > 0xff {
					return errors.New("flags out of range")
				}
				h.Flags = uint8(v)
			}
		case "tle":
			start := r.i
			if err := r.skip(0); err != nil {
				return err
			}
			if r.b[start] != 0xc0 { // keep the element set verbatim, unless nil
				t = b.ref(r.b[start:r.i])
			}
		default:
			if err := r.skip(0); err != nil {
				return err
			}
		}
	}
	h.StationID = b.stationIndex(station)
	b.Headers = append(b.Headers, h)
	b.Station = append(b.Station, station)
	b.Source = append(b.Source, source)
	b.Payload = append(b.Payload, payload)
	b.Tle = append(b.Tle, t)
	b.Kind = append(b.Kind, kind)
	b.Prio = append(b.Prio, prio)
	return nil
}

func kindCode(v []byte) uint8 {
	for i, n := range kindNames {
		if i > 0 && string(v) == n {
			return uint8(i)
		}
	}
	return kindNone
}

func prioCode(v []byte) uint8 {
	for i, n := range prioNames {
		if i > 0 && string(v) == n {
			return uint8(i)
		}
	}
	return prioNone
}
