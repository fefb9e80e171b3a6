package processor

import "unsafe"

// FrameHeader is a frame's hot fields, 24 bytes, in descending alignment
// so there is no padding: the whole batch's headers are one dense array
// that dedup and sort scan without touching payloads.
type FrameHeader struct {
	TimestampMs uint64
	Sequence    uint64
	SatelliteID uint32
	ByteCount   uint16
	StationID   uint8 // index of the frame's station in its batch (see Batch.Stations)
	Flags       uint8
}

// Compile-time size assertion: either array length goes negative (and the
// build breaks) if FrameHeader is not exactly 24 bytes.
var (
	_ [24 - unsafe.Sizeof(FrameHeader{})]byte
	_ [unsafe.Sizeof(FrameHeader{}) - 24]byte
)

// Flag bits (the mf1 header's).
const (
	FlagEmergency uint8 = 0x01
	FlagCRCFailed uint8 = 0x80
)

// Key is a frame's de-duplication identity.
type Key struct {
	SatelliteID uint32
	Sequence    uint64
}

func (h *FrameHeader) key() Key { return Key{h.SatelliteID, h.Sequence} }
