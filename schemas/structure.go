package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkStructure walks one msgpack value spanning all of b without
// decoding it, and rejects what a hostile sender could use against the
// decoder: a container that declares more elements than the bytes left
// could hold (each element takes at least one byte), a str/bin/ext longer
// than the input, nesting deeper than maxNesting, and trailing bytes.
// msgpack/v5 sizes typed slices from the declared length, so without this
// a 20-byte message claiming 2^32 elements exhausts memory.
func checkStructure(b []byte) error {
	w := walker{b: b}
	if err := w.value(0); err != nil {
		return err
	}
	if w.i != len(b) {
		return fmt.Errorf("%d trailing bytes", len(b)-w.i)
	}
	return nil
}

// maxNesting bounds how deep containers may nest.
const maxNesting = 32

var errShort = errors.New("truncated msgpack")

type walker struct {
	b []byte
	i int
}

func (w *walker) need(n uint64) error {
	if n > uint64(len(w.b)-w.i) {
		return errShort
	}
	return nil
}

func (w *walker) uint(n int) (uint64, error) {
	if err := w.need(uint64(n)); err != nil {
		return 0, err
	}
	p := w.b[w.i : w.i+n]
	w.i += n
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	default:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
}

func (w *walker) skip(n uint64) error {
	if err := w.need(n); err != nil {
		return err
	}
	w.i += int(n)
	return nil
}

// container checks that n elements (each at least one byte) can fit, then
// walks them.
func (w *walker) container(n uint64, depth int) error {
	if depth >= maxNesting {
		return errors.New("msgpack nested too deeply")
	}
	if err := w.need(n); err != nil {
		return fmt.Errorf("container of %d elements in %d bytes", n, len(w.b)-w.i)
	}
	for range n {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) value(depth int) error {
	if err := w.need(1); err != nil {
		return err
	}
	c := w.b[w.i]
	w.i++
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return nil
	case c >= 0x80 && c <= 0x8f:
		return w.container(2*uint64(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return w.container(uint64(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return w.skip(uint64(c & 0x1f))
	}
	switch c {
	case 0xcc, 0xd0:
		return w.skip(1)
	case 0xcd, 0xd1:
		return w.skip(2)
	case 0xce, 0xd2, 0xca:
		return w.skip(4)
	case 0xcf, 0xd3, 0xcb:
		return w.skip(8)
	case 0xc4, 0xd9, 0xc5, 0xda, 0xc6, 0xdb:
		n, err := w.uint(lenWidth(c))
		if err != nil {
			return err
		}
		return w.skip(n)
	case 0xdc, 0xdd:
		n, err := w.uint(lenWidth(c))
		if err != nil {
			return err
		}
		return w.container(n, depth)
	case 0xde, 0xdf:
		n, err := w.uint(lenWidth(c))
		if err != nil {
			return err
		}
		return w.container(2*n, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte + 1..16 bytes
		return w.skip(1 + 1<<(c-0xd4))
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type byte, data
		n, err := w.uint(lenWidth(c))
		if err != nil {
			return err
		}
		return w.skip(n + 1)
	}
	return fmt.Errorf("invalid msgpack code 0x%02x", c)
}

// lenWidth is the width of the length that follows a str/bin/ext/array/map
// code (a switch, not a map literal: this runs for every value walked).
func lenWidth(c byte) int {
	switch c {
	case 0xc4, 0xd9, 0xc7:
		return 1
	case 0xc5, 0xda, 0xc8, 0xdc, 0xde:
		return 2
	}
	return 4 // 0xc6, 0xdb, 0xc9, 0xdd, 0xdf
}

// AppendBatchFrames appends the encoded frames of an encoded FrameBatch to
// dst, byte for byte, and returns the batch's station_id (a sub-slice of
// batch) and the number of frames. It lets the fan-in merge small batches
// into one without decoding and re-encoding every frame. The batch is
// checked structurally first (see checkStructure); a batch that is not a
// map with a non-empty frames array fails with ErrMalformed.
func AppendBatchFrames(dst, batch []byte) (out, station []byte, n int, err error) {
	if err := checkStructure(batch); err != nil {
		return dst, nil, 0, fmt.Errorf("%w: frame batch: %v", ErrMalformed, err)
	}
	w := walker{b: batch}
	pairs, err := w.mapLen()
	if err != nil {
		return dst, nil, 0, fmt.Errorf("%w: frame batch: %v", ErrMalformed, err)
	}
	for range pairs {
		key, err := w.str()
		if err != nil {
			return dst, nil, 0, fmt.Errorf("%w: frame batch key: %v", ErrMalformed, err)
		}
		switch string(key) {
		case "station_id":
			if station, err = w.str(); err != nil {
				return dst, nil, 0, fmt.Errorf("%w: station_id: %v", ErrMalformed, err)
			}
		case "frames":
			if n > 0 {
				return dst, nil, 0, fmt.Errorf("%w: frames given twice", ErrMalformed)
			}
			count, err := w.arrayLen()
			if err != nil {
				return dst, nil, 0, fmt.Errorf("%w: frames: %v", ErrMalformed, err)
			}
			for range count {
				start := w.i
				if err := w.value(1); err != nil {
					return dst, nil, 0, fmt.Errorf("%w: frame: %v", ErrMalformed, err)
				}
				dst = append(dst, batch[start:w.i]...)
			}
			n += int(count)
		default:
			if err := w.value(1); err != nil {
				return dst, nil, 0, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
		}
	}
	if n == 0 {
		return dst, nil, 0, fmt.Errorf("%w: %v", ErrMalformed, ErrNoFrames)
	}
	return dst, station, n, nil
}

func (w *walker) mapLen() (uint64, error) {
	if err := w.need(1); err != nil {
		return 0, err
	}
	c := w.b[w.i]
	w.i++
	switch {
	case c >= 0x80 && c <= 0x8f:
		return uint64(c & 0x0f), nil
	case c == 0xde:
		return w.uint(2)
	case c == 0xdf:
		return w.uint(4)
	}
	return 0, fmt.Errorf("not a map (0x%02x)", c)
}

func (w *walker) arrayLen() (uint64, error) {
	if err := w.need(1); err != nil {
		return 0, err
	}
	c := w.b[w.i]
	w.i++
	switch {
	case c >= 0x90 && c <= 0x9f:
		return uint64(c & 0x0f), nil
	case c == 0xdc:
		return w.uint(2)
	case c == 0xdd:
		return w.uint(4)
	}
	return 0, fmt.Errorf("not an array (0x%02x)", c)
}

func (w *walker) str() ([]byte, error) {
	if err := w.need(1); err != nil {
		return nil, err
	}
	c := w.b[w.i]
	w.i++
	var n uint64
	var err error
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n, err = w.uint(1)
	case c == 0xda:
		n, err = w.uint(2)
	case c == 0xdb:
		n, err = w.uint(4)
	default:
		return nil, fmt.Errorf("not a string (0x%02x)", c)
	}
	if err != nil {
		return nil, err
	}
	if err := w.need(n); err != nil {
		return nil, err
	}
	s := w.b[w.i : w.i+int(n)]
	w.i += int(n)
	return s, nil
}
