package schemas

import (
	"errors"
	"fmt"
	"math"
)

// FrameView is one frame of an encoded FrameBatch as sub-slices of the
// message: its fields (a RawFrame) and its whole encoding (Raw), so a
// stage that passes a frame on unchanged can copy its bytes as they came.
type FrameView struct {
	RawFrame
	Raw []byte
}

// ScanFrameBatch walks an encoded FrameBatch without decoding it into
// structs: it checks the structure (see checkStructure) and the rules of
// FrameBatch.Validate, and calls fn with each frame in order. It allocates
// nothing; the view's slices point into batch. It returns the batch's station_id and
// the number of frames. Malformed input fails with an error wrapping
// ErrMalformed; an error from fn is returned unwrapped.
//
// It is the router's decoder: the reflection decoder cost the router most
// of its CPU for a result it only reads five fields of.
func ScanFrameBatch(batch []byte, fn func(f FrameView) error) (station []byte, n int, err error) {
	if err := checkStructure(batch); err != nil {
		return nil, 0, fmt.Errorf("%w: frame batch: %v", ErrMalformed, err)
	}
	w := walker{b: batch}
	pairs, err := w.mapLen()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: frame batch: %v", ErrMalformed, err)
	}
	var f FrameView
	seen := false
	for range pairs {
		key, err := w.str()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: frame batch key: %v", ErrMalformed, err)
		}
		switch string(key) {
		case "station_id":
			if station, err = w.strOrBin(); err != nil {
				return nil, 0, fmt.Errorf("%w: station_id: %v", ErrMalformed, err)
			}
		case "frames":
			if seen {
				return nil, 0, fmt.Errorf("%w: frames given twice", ErrMalformed)
			}
			seen = true
			count, err := w.arrayLen()
			if err != nil {
				return nil, 0, fmt.Errorf("%w: frames: %v", ErrMalformed, err)
			}
			if count > MaxFramesPerBatch {
				return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, ErrTooManyFrames)
			}
			for i := range int(count) {
				start := w.i
				if err := w.frame(&f.RawFrame); err != nil {
					return nil, 0, fmt.Errorf("%w: frame %d: %v", ErrMalformed, i, err)
				}
				f.Raw = batch[start:w.i]
				if err := fn(f); err != nil {
					return nil, 0, err
				}
			}
			n = int(count)
		default:
			if err := w.value(1); err != nil {
				return nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
		}
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, ErrNoFrames)
	}
	return station, n, nil
}

// frame reads one Frame map into f (reset first). Unknown keys are
// skipped, as the reflection decoder does; a nil tle is absent.
func (w *walker) frame(f *RawFrame) error {
	*f = RawFrame{}
	pairs, err := w.mapLen()
	if err != nil {
		return err
	}
	for range pairs {
		key, err := w.str()
		if err != nil {
			return err
		}
		var u uint64
		switch string(key) {
		case "station_id":
			f.StationID, err = w.strOrBin()
		case "source_id":
			f.SourceID, err = w.strOrBin()
		case "source_kind":
			if f.SourceKind, err = w.strOrBin(); err == nil && len(f.SourceKind) > 0 && !SourceKind(f.SourceKind).Valid() {
				err = fmt.Errorf("unknown source_kind %q", f.SourceKind)
			}
		case "priority":
			if f.Priority, err = w.strOrBin(); err == nil && len(f.Priority) > 0 && !Priority(f.Priority).Valid() {
				err = fmt.Errorf("unknown priority %q", f.Priority)
			}
		case "payload":
			if f.Payload, err = w.strOrBin(); err == nil && len(f.Payload) > MaxFrameSize {
				err = fmt.Errorf("payload of %d bytes exceeds %d", len(f.Payload), MaxFrameSize)
			}
		case "sequence":
			f.Sequence, err = w.unsigned(math.MaxUint64)
		case "timestamp_ms":
			f.TimestampMs, err = w.unsigned(math.MaxUint64)
		case "satellite_id":
			u, err = w.unsigned(math.MaxUint32)
			f.SatelliteID = uint32(u)
		case "flags":
			u, err = w.unsigned(math.MaxUint8)
			f.Flags = uint8(u)
		case "tle":
			// A TLE record or nil, as the reflection decoder requires: any
			// other value would be passed on byte for byte and make the
			// whole merged batch undecodable downstream.
			start := w.i
			if start < len(w.b) {
				if c := w.b[start]; c != 0xc0 && c&0xf0 != 0x80 && c != 0xde && c != 0xdf {
					return errors.New("tle: not a map")
				}
			}
			if err = w.value(1); err == nil && w.b[start] != 0xc0 {
				f.Tle = w.b[start:w.i]
			}
		default:
			err = w.value(1)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// strOrBin reads a str, a bin or nil (empty), as msgpack/v5 accepts for
// both string and []byte fields.
func (w *walker) strOrBin() ([]byte, error) {
	if err := w.need(1); err != nil {
		return nil, err
	}
	c := w.b[w.i]
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		w.i++
		n = uint64(c & 0x1f)
	case c == 0xc4, c == 0xc5, c == 0xc6, c == 0xd9, c == 0xda, c == 0xdb:
		w.i++
		var err error
		if n, err = w.uint(lenWidth(c)); err != nil {
			return nil, err
		}
	case c == 0xc0:
		w.i++
		return nil, nil
	default:
		return nil, fmt.Errorf("not a string (0x%02x)", c)
	}
	if err := w.need(n); err != nil {
		return nil, err
	}
	s := w.b[w.i : w.i+int(n)]
	w.i += int(n)
	return s, nil
}

var errRange = errors.New("integer out of range")

// unsigned reads any msgpack integer (or nil, as zero) that is
// non-negative and at most limit.
func (w *walker) unsigned(limit uint64) (uint64, error) {
	if err := w.need(1); err != nil {
		return 0, err
	}
	c := w.b[w.i]
	w.i++
	var v uint64
	switch {
	case c <= 0x7f:
		v = uint64(c)
	case c == 0xc0:
		return 0, nil
	case c >= 0xe0: // negative fixint
		return 0, errRange
	case c == 0xcc, c == 0xcd, c == 0xce, c == 0xcf, c == 0xd0, c == 0xd1, c == 0xd2, c == 0xd3:
		width := 1 << ((c - 0xcc) & 3)
		if err := w.need(uint64(width)); err != nil {
			return 0, err
		}
		p := w.b[w.i : w.i+width]
		w.i += width
		for _, b := range p {
			v = v<<8 | uint64(b)
		}
		if c >= 0xd0 && p[0]&0x80 != 0 { // a signed integer below zero
			return 0, errRange
		}
	default:
		return 0, fmt.Errorf("not an integer (0x%02x)", c)
	}
	if v > limit {
		return 0, errRange
	}
	return v, nil
}
