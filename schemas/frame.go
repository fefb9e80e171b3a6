package schemas

import (
	"errors"
	"fmt"
)

// SourceKind says where a frame came from.
type SourceKind string

// Source kinds of the contract.
const (
	KindLiveUplink     SourceKind = "live_uplink"
	KindArchivedReplay SourceKind = "archived_replay"
	KindSensor         SourceKind = "sensor"
)

// Valid reports whether k is one of the contract's kinds.
func (k SourceKind) Valid() bool {
	return k == KindLiveUplink || k == KindArchivedReplay || k == KindSensor
}

// Priority is a frame's routing class.
type Priority string

// Priorities of the contract.
const (
	PriorityEmergency Priority = "emergency"
	PriorityRoutine   Priority = "routine"
)

// Valid reports whether p is one of the contract's priorities.
func (p Priority) Valid() bool { return p == PriorityEmergency || p == PriorityRoutine }

// mf1 header flag bits, also carried in Frame.Flags.
const (
	FlagEmergency uint8 = 0x01 // the frame must be routed as emergency
	FlagCRCFailed uint8 = 0x80 // the station's CRC check failed; the processor drops it
)

// Frame is one telemetry frame. Frames travel in FrameBatches.
type Frame struct {
	StationID   string     `msgpack:"station_id" json:"station_id"`
	SourceID    string     `msgpack:"source_id" json:"source_id"`
	SourceKind  SourceKind `msgpack:"source_kind" json:"source_kind"`
	Priority    Priority   `msgpack:"priority" json:"priority"`
	Sequence    uint64     `msgpack:"sequence" json:"sequence"`
	TimestampMs uint64     `msgpack:"timestamp_ms" json:"timestamp_ms"`
	SatelliteID uint32     `msgpack:"satellite_id" json:"satellite_id"`
	Flags       uint8      `msgpack:"flags" json:"flags"`
	Payload     []byte     `msgpack:"payload" json:"payload"`
	// Tle is the element set the ground-station client held when it read
	// the frame (gs-client sessions only); absent otherwise.
	Tle *Tle `msgpack:"tle,omitempty" json:"tle,omitempty"`
}

// Emergency reports whether the frame is routed as emergency.
func (f *Frame) Emergency() bool {
	return f.Priority == PriorityEmergency || f.Flags&FlagEmergency != 0
}

// Key is the frame's identity for de-duplication: the same satellite frame
// relayed by two stations has the same key.
func (f *Frame) Key() FrameKey { return FrameKey{f.SatelliteID, f.Sequence} }

// FrameKey identifies a satellite frame: (satellite_id, sequence).
type FrameKey struct {
	SatelliteID uint32
	Sequence    uint64
}

// FrameBatch is what the gateway publishes on tlm.ingest.<station> and what
// every telemetry stage passes on: many frames, one message. A batch of one
// frame is valid.
type FrameBatch struct {
	StationID string  `msgpack:"station_id" json:"station_id"`
	Frames    []Frame `msgpack:"frames" json:"frames"`
}

// MaxFramesPerBatch bounds a batch so a hostile message cannot make a
// worker allocate without limit; the processor's batch limit is the same.
const MaxFramesPerBatch = 10_000

// Errors returned by Validate.
var (
	ErrNoFrames      = errors.New("batch has no frames")
	ErrTooManyFrames = errors.New("batch has more than 10000 frames")
)

// Validate checks the batch's invariants.
func (b *FrameBatch) Validate() error {
	if len(b.Frames) == 0 {
		return ErrNoFrames
	}
	if len(b.Frames) > MaxFramesPerBatch {
		return ErrTooManyFrames
	}
	for i := range b.Frames {
		f := &b.Frames[i]
		if f.SourceKind != "" && !f.SourceKind.Valid() {
			return fmt.Errorf("frame %d: unknown source_kind %q", i, f.SourceKind)
		}
		if f.Priority != "" && !f.Priority.Valid() {
			return fmt.Errorf("frame %d: unknown priority %q", i, f.Priority)
		}
		if len(f.Payload) > MaxFrameSize {
			return fmt.Errorf("frame %d: payload of %d bytes exceeds %d", i, len(f.Payload), MaxFrameSize)
		}
	}
	return nil
}

// AppendFrameBatch appends the msgpack encoding of b to dst without
// reflection or allocation beyond dst's growth. Its output decodes with
// Unmarshal exactly like Marshal's (TestFastEncoderMatches); it exists
// because the gateway encodes every batch on its hot path.
func AppendFrameBatch(dst []byte, b *FrameBatch) []byte {
	dst = AppendFrameBatchHeader(dst, b.StationID, len(b.Frames))
	for i := range b.Frames {
		dst = AppendFrame(dst, &b.Frames[i])
	}
	return dst
}

// AppendFrameBatchHeader appends the start of a FrameBatch holding n
// frames; n AppendFrame calls must follow. Encoders that build the frames
// first (the gateway, frame by frame) prepend this when the count is known.
func AppendFrameBatchHeader(dst []byte, station string, n int) []byte {
	dst = appendMapLen(dst, 2)
	dst = appendStr(dst, "station_id")
	dst = appendStr(dst, station)
	dst = appendStr(dst, "frames")
	return appendArrayLen(dst, n)
}

// RawFrame is a Frame whose strings are byte slices and whose optional
// Tle is its raw msgpack map, so that allocation-free encoders (the
// processor's) can write frames straight from their buffers.
type RawFrame struct {
	StationID, SourceID, SourceKind, Priority []byte
	Sequence, TimestampMs                     uint64
	SatelliteID                               uint32
	Flags                                     uint8
	Payload                                   []byte
	Tle                                       []byte // raw msgpack map, or nil
}

// AppendRawFrame appends f as a Frame msgpack map, byte-for-byte what
// AppendFrame writes for the same frame (TestAppendRawFrameMatchesAppendFrame).
// It repeats AppendFrame's field list on purpose: a single generic version
// over string|[]byte measured about 7% slower on the processor's
// zero-allocation path.
func AppendRawFrame(dst []byte, f *RawFrame) []byte {
	n := 9
	if len(f.Tle) > 0 {
		n = 10
	}
	dst = appendMapLen(dst, n)
	dst = appendStr(dst, "station_id")
	dst = appendStrBytes(dst, f.StationID)
	dst = appendStr(dst, "source_id")
	dst = appendStrBytes(dst, f.SourceID)
	dst = appendStr(dst, "source_kind")
	dst = appendStrBytes(dst, f.SourceKind)
	dst = appendStr(dst, "priority")
	dst = appendStrBytes(dst, f.Priority)
	dst = appendStr(dst, "sequence")
	dst = appendUint(dst, f.Sequence)
	dst = appendStr(dst, "timestamp_ms")
	dst = appendUint(dst, f.TimestampMs)
	dst = appendStr(dst, "satellite_id")
	dst = appendUint(dst, uint64(f.SatelliteID))
	dst = appendStr(dst, "flags")
	dst = appendUint(dst, uint64(f.Flags))
	dst = appendStr(dst, "payload")
	dst = appendBin(dst, f.Payload)
	if len(f.Tle) > 0 {
		dst = appendStr(dst, "tle")
		dst = append(dst, f.Tle...)
	}
	return dst
}

// AppendFrameBatchHeaderBytes is AppendFrameBatchHeader for a station held
// as bytes (no string conversion, so no allocation).
func AppendFrameBatchHeaderBytes(dst []byte, station []byte, n int) []byte {
	dst = appendMapLen(dst, 2)
	dst = appendStr(dst, "station_id")
	dst = appendStrBytes(dst, station)
	dst = appendStr(dst, "frames")
	return appendArrayLen(dst, n)
}

// AppendFrame appends one Frame's msgpack map to dst.
func AppendFrame(dst []byte, f *Frame) []byte {
	n := 9
	if f.Tle != nil {
		n = 10
	}
	dst = appendMapLen(dst, n)
	dst = appendStr(dst, "station_id")
	dst = appendStr(dst, f.StationID)
	dst = appendStr(dst, "source_id")
	dst = appendStr(dst, f.SourceID)
	dst = appendStr(dst, "source_kind")
	dst = appendStr(dst, string(f.SourceKind))
	dst = appendStr(dst, "priority")
	dst = appendStr(dst, string(f.Priority))
	dst = appendStr(dst, "sequence")
	dst = appendUint(dst, f.Sequence)
	dst = appendStr(dst, "timestamp_ms")
	dst = appendUint(dst, f.TimestampMs)
	dst = appendStr(dst, "satellite_id")
	dst = appendUint(dst, uint64(f.SatelliteID))
	dst = appendStr(dst, "flags")
	dst = appendUint(dst, uint64(f.Flags))
	dst = appendStr(dst, "payload")
	dst = appendBin(dst, f.Payload)
	if f.Tle != nil {
		dst = appendStr(dst, "tle")
		enc, err := Marshal(f.Tle)
		if err != nil { // a Tle of plain fields always encodes
			panic(err)
		}
		dst = append(dst, enc...)
	}
	return dst
}
