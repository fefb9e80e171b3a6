package processor

import "bytes"

// ref locates bytes in the batch's arena.
type ref struct{ off, n uint32 }

// Batch is one FrameBatch in struct-of-arrays form: the 24-byte headers
// apart, the cold fields (ids, payloads, the optional element set) as
// arena references in parallel slices. Everything is reset, not
// reallocated, between batches.
type Batch struct {
	Headers []FrameHeader
	Station []ref
	Source  []ref
	Payload []ref
	Tle     []ref
	Kind    []uint8
	Prio    []uint8

	station  ref   // the batch's own station_id
	stations []ref // distinct stations, indexed by FrameHeader.StationID
	arena    *Arena
}

func newBatch(frames, arenaBytes int) *Batch {
	return &Batch{
		Headers: make([]FrameHeader, 0, frames), Station: make([]ref, 0, frames), Source: make([]ref, 0, frames),
		Payload: make([]ref, 0, frames), Tle: make([]ref, 0, frames), Kind: make([]uint8, 0, frames),
		Prio: make([]uint8, 0, frames), stations: make([]ref, 0, 16), arena: NewArena(arenaBytes),
	}
}

func (b *Batch) reset() {
	b.Headers, b.Station, b.Source, b.Payload = b.Headers[:0], b.Station[:0], b.Source[:0], b.Payload[:0]
	b.Tle, b.Kind, b.Prio, b.stations = b.Tle[:0], b.Kind[:0], b.Prio[:0], b.stations[:0]
	b.station = ref{}
	b.arena.Reset()
}

// Len is the number of frames.
func (b *Batch) Len() int { return len(b.Headers) }

// ref copies v into the arena.
func (b *Batch) ref(v []byte) ref {
	if len(v) == 0 {
		return ref{}
	}
	return ref{b.arena.Add(v), uint32(len(v))}
}

func (b *Batch) bytes(r ref) []byte {
	if r.n == 0 {
		return nil
	}
	return b.arena.Bytes(r.off, r.n)
}

// stationIndex interns a frame's station into the batch's small table so
// the header can carry it in one byte; 255 means "one of many".
func (b *Batch) stationIndex(s ref) uint8 {
	v := b.bytes(s)
	for i, r := range b.stations {
		if bytes.Equal(b.bytes(r), v) {
			return uint8(i)
		}
	}
	if len(b.stations) >= 255 {
		return 255
	}
	b.stations = append(b.stations, s)
	return uint8(len(b.stations) - 1)
}
