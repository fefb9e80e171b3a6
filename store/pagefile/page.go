package pagefile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Page header, little-endian, at byte 0 of every page:
//
//	offset size field
//	     0    4 magic      "OOR1" (0x4F 0x4F 0x52 0x31)
//	     4    4 checksum   CRC32-C (Castagnoli) over bytes [8, PageSize)
//	     8    4 page id    u32, must equal the page's position in the file
//	    12    1 type       Type (meta, slotted, btree internal, btree leaf)
//	    13    3 reserved   zero
//	    16    8 LSN        u64, log sequence number of the last change
//	    24      body       PageSize-24 bytes owned by the layer above
//
// The checksum covers the page id, type and LSN as well as the body, so a
// misdirected write or a flipped bit in the header is caught too.
const (
	PageSize   = 4096
	HeaderSize = 24
	BodySize   = PageSize - HeaderSize

	offMagic = 0
	offCRC   = 4
	offID    = 8
	offType  = 12
	offLSN   = 16
)

// Magic identifies an OOR page.
var Magic = [4]byte{'O', 'O', 'R', '1'}

// Type says what the body of a page holds.
type Type uint8

// Page types. Zero is invalid so that an all-zero (never written) page is
// rejected.
const (
	TypeMeta       Type = 1 // file or tree metadata
	TypeSlotted    Type = 2 // store/slotted record page
	TypeBTreeInner Type = 3 // store/btree internal node
	TypeBTreeLeaf  Type = 4 // store/btree leaf node
	maxType             = TypeBTreeLeaf
	_                   = maxType
)

func (t Type) String() string {
	switch t {
	case TypeMeta:
		return "meta"
	case TypeSlotted:
		return "slotted"
	case TypeBTreeInner:
		return "btree-inner"
	case TypeBTreeLeaf:
		return "btree-leaf"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

var (
	// ErrChecksum is returned when a page's stored CRC does not match its
	// contents: bit rot, a torn write, or tampering.
	ErrChecksum = errors.New("pagefile: checksum mismatch")
	// ErrBadPage is returned when a page has the wrong magic, the wrong page
	// id (a misdirected write) or an unknown type.
	ErrBadPage = errors.New("pagefile: malformed page")
	// ErrPageRange is returned when reading a page id at or past the end of
	// the file.
	ErrPageRange = errors.New("pagefile: page id out of range")
	// ErrClosed is returned by operations on a closed Pager.
	ErrClosed = errors.New("pagefile: closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Init formats buf (PageSize bytes) as an empty page of the given type: the
// body is zeroed and the header set. The checksum is filled in by Seal.
func Init(buf []byte, id uint32, t Type) {
	_ = buf[PageSize-1]
	clear(buf[:PageSize])
	copy(buf[offMagic:], Magic[:])
	binary.LittleEndian.PutUint32(buf[offID:], id)
	buf[offType] = byte(t)
}

// Seal writes magic, id and checksum into buf so it can go to disk.
func Seal(buf []byte, id uint32) {
	_ = buf[PageSize-1]
	copy(buf[offMagic:], Magic[:])
	binary.LittleEndian.PutUint32(buf[offID:], id)
	binary.LittleEndian.PutUint32(buf[offCRC:], crc32.Checksum(buf[offID:PageSize], castagnoli))
}

// Verify checks that buf is a valid sealed page with the given id. It is the
// decoder of on-disk page bytes and never panics on any input.
func Verify(buf []byte, id uint32) error {
	if len(buf) != PageSize {
		return fmt.Errorf("%w: page %d is %d bytes, want %d", ErrBadPage, id, len(buf), PageSize)
	}
	if [4]byte(buf[offMagic:offMagic+4]) != Magic {
		return fmt.Errorf("%w: page %d has bad magic % x", ErrBadPage, id, buf[:4])
	}
	stored := binary.LittleEndian.Uint32(buf[offCRC:])
	if got := crc32.Checksum(buf[offID:PageSize], castagnoli); got != stored {
		return fmt.Errorf("%w: page %d stored %#08x computed %#08x", ErrChecksum, id, stored, got)
	}
	if got := binary.LittleEndian.Uint32(buf[offID:]); got != id {
		return fmt.Errorf("%w: page %d carries id %d", ErrBadPage, id, got)
	}
	if t := Type(buf[offType]); t == 0 || t > maxType {
		return fmt.Errorf("%w: page %d has unknown type %d", ErrBadPage, id, t)
	}
	return nil
}

// PageType returns the type stored in a page header.
func PageType(buf []byte) Type { return Type(buf[offType]) }

// ID returns the page id stored in a page header.
func ID(buf []byte) uint32 { return binary.LittleEndian.Uint32(buf[offID:]) }

// LSN returns the log sequence number stored in a page header.
func LSN(buf []byte) uint64 { return binary.LittleEndian.Uint64(buf[offLSN:]) }

// SetLSN stores lsn in a page header.
func SetLSN(buf []byte, lsn uint64) { binary.LittleEndian.PutUint64(buf[offLSN:], lsn) }
