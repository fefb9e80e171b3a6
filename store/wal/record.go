package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Record framing (little-endian):
//
//	+-----------+-----------+-----------+--------------------+
//	| crc32c    | length    | lsn       | payload            |
//	| 4 bytes   | 4 bytes   | 8 bytes   | length bytes       |
//	+-----------+-----------+-----------+--------------------+
//	 0           4           8           16
//
// The CRC-32C (Castagnoli) covers bytes [4, 16+length): the length, the LSN
// and the payload, so a torn length or LSN is caught as surely as a torn
// payload. The payload is opaque to the WAL (store/lsm puts an encoded
// batch there). A zero-filled tail never passes: the CRC of zeros is not
// zero.
const headerSize = 16

// MaxPayload bounds one record's payload; larger lengths are treated as
// corruption by readers.
const MaxPayload = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned by Replay when records are missing between
// segments or a segment's name does not match its first record: damage a
// torn tail cannot explain.
var ErrCorrupt = errors.New("wal: corrupt log")

// ErrClosed is returned by a Writer after Close or after a failed write or
// fsync poisoned it.
var ErrClosed = errors.New("wal: writer closed")

// AppendRecord appends one framed record to dst.
func AppendRecord(dst []byte, lsn uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint64(dst, lsn)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// ReadRecords decodes records from data, calling fn for each good one, and
// stops at the first record that is short, fails its CRC, or whose LSN is
// not prev+1 (prev = firstLSN-1 to begin with; firstLSN 0 accepts any first
// LSN). It returns how many bytes were good and the last good LSN (firstLSN-1
// if none). torn reports whether bytes after the good prefix were ignored.
// An error from fn stops decoding and is returned.
func ReadRecords(data []byte, firstLSN uint64, fn func(lsn uint64, payload []byte) error) (good int, last uint64, torn bool, err error) {
	last = firstLSN - 1
	if firstLSN == 0 {
		last = 0
	}
	off := 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < headerSize {
			return off, last, true, nil
		}
		n := binary.LittleEndian.Uint32(rest[4:])
		if n > MaxPayload || uint64(n) > uint64(len(rest)-headerSize) {
			return off, last, true, nil
		}
		end := headerSize + int(n)
		if crc32.Checksum(rest[4:end], castagnoli) != binary.LittleEndian.Uint32(rest) {
			return off, last, true, nil
		}
		lsn := binary.LittleEndian.Uint64(rest[8:])
		if (firstLSN != 0 || off > 0) && lsn != last+1 {
			return off, last, true, nil
		}
		if fn != nil {
			if err := fn(lsn, rest[headerSize:end]); err != nil {
				return off, last, false, err
			}
		}
		last = lsn
		off += end
	}
	return off, last, false, nil
}
