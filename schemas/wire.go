package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Ground-station TCP framing:
//
//	+--------------------------+------------------------------+
//	| length u32 big-endian    | payload (length bytes)       |
//	+--------------------------+------------------------------+
//
// 1 <= length <= MaxFrameSize. A length outside that range is a protocol
// error that ends the session (the stream cannot be resynchronised).
// A zero length is invalid: it carries nothing and is the usual symptom of
// a peer speaking another protocol.

// MaxFrameSize is the largest payload a TCP frame may carry.
const MaxFrameSize = 65_536

// Framing errors; both are protocol errors that close the session.
var (
	ErrFrameTooLarge = errors.New("frame length exceeds 65536 bytes")
	ErrFrameEmpty    = errors.New("frame length is zero")
)

// ReadFrame reads one length-prefixed frame from r into buf (grown if it
// is too small) and returns the payload, which aliases buf. io.EOF means a
// clean end at a frame boundary; io.ErrUnexpectedEOF a connection closed
// mid-frame.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err // io.EOF at a boundary, ErrUnexpectedEOF inside the header
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrFrameEmpty
	}
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d", ErrFrameTooLarge, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrameHeader appends the 4-byte length prefix for a payload of n bytes.
func AppendFrameHeader(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// WriteFrame writes payload as one length-prefixed frame.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 {
		return ErrFrameEmpty
	}
	if len(payload) > MaxFrameSize {
		return fmt.Errorf("%w: %d", ErrFrameTooLarge, len(payload))
	}
	b := make([]byte, 0, 4+len(payload))
	b = AppendFrameHeader(b, len(payload))
	b = append(b, payload...)
	_, err := w.Write(b)
	return err
}

// mf1 telemetry header, the first 24 bytes of every payload of a session
// that opened with HELLO ... format=mf1 (big-endian):
//
//	offset size field
//	     0    8 timestamp_ms u64
//	     8    8 sequence     u64
//	    16    4 satellite_id u32
//	    20    2 byte_count   u16  bytes of telemetry after the header
//	    22    1 station_id   u8
//	    23    1 flags        u8   0x01 emergency, 0x80 failed CRC

// MF1HeaderSize is the size of the mf1 telemetry header.
const MF1HeaderSize = 24

// ErrMF1Header is returned for a payload that cannot hold its mf1 header
// or the byte_count it announces.
var ErrMF1Header = errors.New("bad mf1 header")

// MF1Header is the decoded mf1 telemetry header.
type MF1Header struct {
	TimestampMs uint64
	Sequence    uint64
	SatelliteID uint32
	ByteCount   uint16
	StationID   uint8
	Flags       uint8
}

// DecodeMF1 splits an mf1 payload into its header and the ByteCount bytes
// of telemetry after it (aliasing p). Extra bytes after ByteCount are an
// error: a station that miscounts is sending garbage.
func DecodeMF1(p []byte) (MF1Header, []byte, error) {
	var h MF1Header
	if len(p) < MF1HeaderSize {
		return h, nil, fmt.Errorf("%w: %d bytes, need %d", ErrMF1Header, len(p), MF1HeaderSize)
	}
	h.TimestampMs = binary.BigEndian.Uint64(p[0:])
	h.Sequence = binary.BigEndian.Uint64(p[8:])
	h.SatelliteID = binary.BigEndian.Uint32(p[16:])
	h.ByteCount = binary.BigEndian.Uint16(p[20:])
	h.StationID = p[22]
	h.Flags = p[23]
	body := p[MF1HeaderSize:]
	if len(body) != int(h.ByteCount) {
		return h, nil, fmt.Errorf("%w: byte_count %d but %d bytes follow", ErrMF1Header, h.ByteCount, len(body))
	}
	return h, body, nil
}

// AppendMF1 appends an mf1 payload (header with ByteCount set from body, then body).
func AppendMF1(dst []byte, h MF1Header, body []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, h.TimestampMs)
	dst = binary.BigEndian.AppendUint64(dst, h.Sequence)
	dst = binary.BigEndian.AppendUint32(dst, h.SatelliteID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	dst = append(dst, h.StationID, h.Flags)
	return append(dst, body...)
}

// Hello is a session's opening text frame:
//
//	HELLO station=<id> format=mf1 [token=<secret>]
//
// Keys may come in any order; unknown keys are an error so typos surface.
type Hello struct {
	Station string
	Format  string // "mf1" or "" (opaque payloads)
	Token   string
}

// Session control frames.
var (
	helloPrefix  = []byte("HELLO ")
	goodbyeFrame = []byte("GOODBYE")
)

// ErrHello is returned for a frame that starts with "HELLO " but is not a
// valid HELLO line.
var ErrHello = errors.New("bad HELLO frame")

// IsHello reports whether a payload is meant as a HELLO line.
func IsHello(p []byte) bool { return bytes.HasPrefix(p, helloPrefix) }

// IsGoodbye reports whether a payload is the GOODBYE control frame.
func IsGoodbye(p []byte) bool { return bytes.Equal(bytes.TrimRight(p, "\r\n"), goodbyeFrame) }

// GoodbyeFrame returns the payload of the GOODBYE control frame.
func GoodbyeFrame() []byte { return append([]byte(nil), goodbyeFrame...) }

// maxStationID bounds a station id; it becomes a subject token and a KV key.
const maxStationID = 64

// ParseHello parses a HELLO line.
func ParseHello(p []byte) (Hello, error) {
	var h Hello
	if !IsHello(p) {
		return h, fmt.Errorf("%w: does not start with \"HELLO \"", ErrHello)
	}
	if len(p) > 512 {
		return h, fmt.Errorf("%w: longer than 512 bytes", ErrHello)
	}
	line := strings.TrimRight(string(p[len(helloPrefix):]), "\r\n")
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return h, fmt.Errorf("%w: %q is not key=value", ErrHello, kv)
		}
		switch k {
		case "station":
			h.Station = v
		case "format":
			h.Format = v
		case "token":
			h.Token = v
		default:
			return h, fmt.Errorf("%w: unknown key %q", ErrHello, k)
		}
	}
	if h.Station == "" {
		return h, fmt.Errorf("%w: no station=", ErrHello)
	}
	if len(h.Station) > maxStationID {
		return h, fmt.Errorf("%w: station id longer than %d", ErrHello, maxStationID)
	}
	for _, c := range []byte(h.Station) {
		if c < 0x21 || c > 0x7e || c == '.' || c == '*' || c == '>' {
			return h, fmt.Errorf("%w: station id may use printable ASCII except . * >", ErrHello)
		}
	}
	if h.Format != "" && h.Format != "mf1" {
		return h, fmt.Errorf("%w: unsupported format %q", ErrHello, h.Format)
	}
	return h, nil
}

// String formats h as a HELLO line.
func (h Hello) String() string {
	s := "HELLO station=" + h.Station
	if h.Format != "" {
		s += " format=" + h.Format
	}
	if h.Token != "" {
		s += " token=" + h.Token
	}
	return s
}

// UDP detection datagram, 24 bytes big-endian:
//
//	offset size field
//	     0    4 sensor_id    u32
//	     4    4 azimuth      f32 degrees
//	     8    4 elevation    f32 degrees
//	    12    4 range_km     f32
//	    16    8 timestamp_ms u64

// DetectionSize is the size of a UDP detection datagram.
const DetectionSize = 24

// ErrDetection is returned for a datagram that is not a valid detection.
var ErrDetection = errors.New("bad detection datagram")

// Detection is one radar/optical detection, published as msgpack on
// sda.detections.<sensor_id>.
type Detection struct {
	SensorID    uint32  `msgpack:"sensor_id" json:"sensor_id"`
	Azimuth     float32 `msgpack:"azimuth" json:"azimuth"`
	Elevation   float32 `msgpack:"elevation" json:"elevation"`
	RangeKm     float32 `msgpack:"range_km" json:"range_km"`
	TimestampMs uint64  `msgpack:"timestamp_ms" json:"timestamp_ms"`
}

// DecodeDetection decodes a UDP datagram: exactly 24 bytes, finite values,
// azimuth in [0,360), elevation in [-90,90], range >= 0.
func DecodeDetection(p []byte) (Detection, error) {
	var d Detection
	if len(p) != DetectionSize {
		return d, fmt.Errorf("%w: %d bytes, want %d", ErrDetection, len(p), DetectionSize)
	}
	d.SensorID = binary.BigEndian.Uint32(p[0:])
	d.Azimuth = math.Float32frombits(binary.BigEndian.Uint32(p[4:]))
	d.Elevation = math.Float32frombits(binary.BigEndian.Uint32(p[8:]))
	d.RangeKm = math.Float32frombits(binary.BigEndian.Uint32(p[12:]))
	d.TimestampMs = binary.BigEndian.Uint64(p[16:])
	return d, d.Validate()
}

// Validate checks a detection's ranges.
func (d *Detection) Validate() error {
	az, el, rg := float64(d.Azimuth), float64(d.Elevation), float64(d.RangeKm)
	if !finite(az) || !finite(el) || !finite(rg) || az < 0 || az >= 360 || el < -90 || el > 90 || rg < 0 {
		return fmt.Errorf("%w: az %v el %v range %v out of range", ErrDetection, d.Azimuth, d.Elevation, d.RangeKm)
	}
	return nil
}

// AppendDetection appends the 24-byte datagram for d.
func AppendDetection(dst []byte, d Detection) []byte {
	dst = binary.BigEndian.AppendUint32(dst, d.SensorID)
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(d.Azimuth))
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(d.Elevation))
	dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(d.RangeKm))
	return binary.BigEndian.AppendUint64(dst, d.TimestampMs)
}
