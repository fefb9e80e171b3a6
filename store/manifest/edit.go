package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// NumLevels is the number of LSM levels (L0..L6).
const NumLevels = 7

// ErrCorrupt is returned when the manifest cannot be decoded or describes
// an impossible state (a removed table that does not exist, overlapping
// tables in a sorted level, ...).
var ErrCorrupt = errors.New("manifest: corrupt")

// TableMeta describes one live SSTable.
type TableMeta struct {
	ID                uint64
	Level             int
	Size              int64
	Entries           uint64
	Smallest, Largest []byte
}

// TableRef names a table to remove.
type TableRef struct {
	Level int
	ID    uint64
}

// Edit is one atomic change to the state. Zero fields change nothing.
type Edit struct {
	// Checkpoint marks an edit that holds the complete state (the first
	// edit of every manifest file); applying it starts from empty.
	Checkpoint bool
	FlushedLSN uint64 // if > 0, the new flushed LSN (never decreases)
	NextFileID uint64 // if > 0, the next unused file id
	Remove     []TableRef
	Add        []TableMeta
}

// Record framing in a manifest file (little-endian):
//
//	+-----------+-----------+----------------------+
//	| crc32c    | length    | edit (length bytes)  |
//	| u32       | u32       |                      |
//	+-----------+-----------+----------------------+
//
// The CRC-32C covers the length and the edit. An edit is a sequence of
// tagged fields:
//
//	tag 1 checkpoint    (no body)
//	tag 2 flushed LSN   uvarint
//	tag 3 next file id  uvarint
//	tag 4 remove table  level uvarint | id uvarint
//	tag 5 add table     level uvarint | id uvarint | size uvarint | entries uvarint |
//	                    smallest: uvarint length + bytes | largest: uvarint length + bytes
const (
	tagCheckpoint = 1
	tagFlushed    = 2
	tagNextFile   = 3
	tagRemove     = 4
	tagAdd        = 5

	maxEdit = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Encode appends the framed edit to dst.
func (e *Edit) Encode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	if e.Checkpoint {
		dst = append(dst, tagCheckpoint)
	}
	if e.FlushedLSN > 0 {
		dst = binary.AppendUvarint(append(dst, tagFlushed), e.FlushedLSN)
	}
	if e.NextFileID > 0 {
		dst = binary.AppendUvarint(append(dst, tagNextFile), e.NextFileID)
	}
	for _, r := range e.Remove {
		dst = append(dst, tagRemove)
		dst = binary.AppendUvarint(dst, uint64(r.Level))
		dst = binary.AppendUvarint(dst, r.ID)
	}
	for _, t := range e.Add {
		dst = append(dst, tagAdd)
		dst = binary.AppendUvarint(dst, uint64(t.Level))
		dst = binary.AppendUvarint(dst, t.ID)
		dst = binary.AppendUvarint(dst, uint64(t.Size))
		dst = binary.AppendUvarint(dst, t.Entries)
		dst = appendBytes(dst, t.Smallest)
		dst = appendBytes(dst, t.Largest)
	}
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(dst)-start-8))
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field length %d", ErrCorrupt, n)
		return nil
	}
	p := bytes.Clone(d.b[:n])
	d.b = d.b[n:]
	return p
}

func (d *decoder) level() int {
	l := d.uvarint()
	if d.err == nil && l >= NumLevels {
		d.err = fmt.Errorf("%w: level %d", ErrCorrupt, l)
	}
	return int(l)
}

// decodeEdit parses one edit body (without framing).
func decodeEdit(b []byte) (Edit, error) {
	var e Edit
	d := decoder{b: b}
	for len(d.b) > 0 && d.err == nil {
		tag := d.b[0]
		d.b = d.b[1:]
		switch tag {
		case tagCheckpoint:
			e.Checkpoint = true
		case tagFlushed:
			e.FlushedLSN = d.uvarint()
		case tagNextFile:
			e.NextFileID = d.uvarint()
		case tagRemove:
			e.Remove = append(e.Remove, TableRef{Level: d.level(), ID: d.uvarint()})
		case tagAdd:
			t := TableMeta{Level: d.level(), ID: d.uvarint()}
			t.Size = int64(d.uvarint())
			t.Entries = d.uvarint()
			t.Smallest, t.Largest = d.bytes(), d.bytes()
			if d.err == nil && bytes.Compare(t.Smallest, t.Largest) > 0 {
				d.err = fmt.Errorf("%w: table %d smallest > largest", ErrCorrupt, t.ID)
			}
			e.Add = append(e.Add, t)
		default:
			return Edit{}, fmt.Errorf("%w: unknown tag %d", ErrCorrupt, tag)
		}
	}
	return e, d.err
}

// readRecords splits a manifest file into edit bodies, stopping at the
// first torn or corrupt record. It returns the good edits and whether bytes
// were cut.
func readRecords(data []byte) (bodies [][]byte, torn bool) {
	for len(data) > 0 {
		if len(data) < 8 {
			return bodies, true
		}
		n := binary.LittleEndian.Uint32(data[4:])
		if n > maxEdit || uint64(n) > uint64(len(data)-8) {
			return bodies, true
		}
		if crc32.Checksum(data[4:8+n], castagnoli) != binary.LittleEndian.Uint32(data) {
			return bodies, true
		}
		bodies = append(bodies, data[8:8+n])
		data = data[8+n:]
	}
	return bodies, false
}

// State is the set of live tables and the engine's durable positions.
type State struct {
	// Levels[0] is ordered oldest to newest (by id); deeper levels by key.
	Levels     [NumLevels][]TableMeta
	FlushedLSN uint64
	NextFileID uint64
}

// Clone returns a deep-enough copy (table metadata is immutable).
func (s *State) Clone() State {
	c := *s
	for i := range c.Levels {
		c.Levels[i] = slices.Clone(s.Levels[i])
	}
	return c
}

// Apply changes s by e, rejecting edits that remove missing tables or add
// existing ids.
func (s *State) Apply(e Edit) error {
	if e.Checkpoint {
		*s = State{}
	}
	for _, r := range e.Remove {
		i := slices.IndexFunc(s.Levels[r.Level], func(t TableMeta) bool { return t.ID == r.ID })
		if i < 0 {
			return fmt.Errorf("%w: remove of missing table %d at L%d", ErrCorrupt, r.ID, r.Level)
		}
		s.Levels[r.Level] = slices.Delete(s.Levels[r.Level], i, i+1)
	}
	for _, t := range e.Add {
		if s.Has(t.ID) {
			return fmt.Errorf("%w: table %d added twice", ErrCorrupt, t.ID)
		}
		s.Levels[t.Level] = append(s.Levels[t.Level], t)
		if t.ID >= s.NextFileID {
			s.NextFileID = t.ID + 1
		}
	}
	for l := range s.Levels {
		if l == 0 {
			slices.SortFunc(s.Levels[0], func(a, b TableMeta) int { return cmpU64(a.ID, b.ID) })
		} else {
			slices.SortFunc(s.Levels[l], func(a, b TableMeta) int { return bytes.Compare(a.Smallest, b.Smallest) })
		}
	}
	if e.FlushedLSN > s.FlushedLSN {
		s.FlushedLSN = e.FlushedLSN
	}
	if e.NextFileID > s.NextFileID {
		s.NextFileID = e.NextFileID
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Has reports whether a table id is live.
func (s State) Has(id uint64) bool {
	for _, lvl := range s.Levels {
		for _, t := range lvl {
			if t.ID == id {
				return true
			}
		}
	}
	return false
}

// Tables returns the number of live tables per level.
func (s State) Tables() [NumLevels]int {
	var n [NumLevels]int
	for i, l := range s.Levels {
		n[i] = len(l)
	}
	return n
}

// Check verifies the invariants: L1 and deeper are sorted and
// non-overlapping, ids are unique and below NextFileID.
func (s *State) Check() error {
	seen := map[uint64]bool{}
	for l, lvl := range s.Levels {
		for i, t := range lvl {
			if seen[t.ID] {
				return fmt.Errorf("%w: table %d listed twice", ErrCorrupt, t.ID)
			}
			seen[t.ID] = true
			if t.ID >= s.NextFileID {
				return fmt.Errorf("%w: table %d >= next file id %d", ErrCorrupt, t.ID, s.NextFileID)
			}
			if t.Level != l {
				return fmt.Errorf("%w: table %d at L%d says L%d", ErrCorrupt, t.ID, l, t.Level)
			}
			if l > 0 && i > 0 && bytes.Compare(lvl[i-1].Largest, t.Smallest) >= 0 {
				return fmt.Errorf("%w: L%d tables %d and %d overlap", ErrCorrupt, l, lvl[i-1].ID, t.ID)
			}
		}
	}
	return nil
}

// Decode replays a manifest file's bytes into a State. A torn or corrupt
// tail ends the replay (reported by torn); an edit that does not apply is
// ErrCorrupt. The first edit must be a checkpoint.
func Decode(data []byte) (st State, edits int, torn bool, err error) {
	bodies, torn := readRecords(data)
	for i, b := range bodies {
		e, err := decodeEdit(b)
		if err != nil {
			return State{}, i, torn, err
		}
		if i == 0 && !e.Checkpoint {
			return State{}, 0, torn, fmt.Errorf("%w: first edit is not a checkpoint", ErrCorrupt)
		}
		if err := st.Apply(e); err != nil {
			return State{}, i, torn, err
		}
	}
	if len(bodies) == 0 {
		return State{}, 0, torn, fmt.Errorf("%w: no checkpoint", ErrCorrupt)
	}
	return st, len(bodies), torn, st.Check()
}
