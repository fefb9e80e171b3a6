// Package archive keeps every processed frame on disk: a durable consumer
// of TLM_PROCESSED appends each frame to append-only segment files under
// <data-dir>/archive, fsyncs, and only then acks. An in-memory index by
// source and time, rebuilt from the segments at open, answers queries
// (`meridian archive query --source S --from T --to T`): per segment and
// source, the time range it covers, so a query reads only the segments
// that can hold matches.
//
// Guarantees. A frame acked by the archive is on disk (fsynced). A torn or
// corrupt tail (a crash mid-append) is cut at open, never read as data.
// Redelivered batches are skipped frame by frame (a window of recent
// (satellite_id, sequence) keys), so the archive's count equals the
// processor's (course criterion 4). A full disk fails the batch with an
// error wrapping syscall.ENOSPC: its partial record is cut off at once, the
// batch is not acked (JetStream redelivers it) and the worker resumes by
// itself once there is space. A failed fsync instead stops the worker so
// that a restart reopens the archive (ops/RUNBOOK.md, "Disk full").
//
// Caveats. The index is sparse (a few dozen bytes per source per 64 MiB
// segment, so memory stays flat however long the archive grows); a query
// reads every segment whose range overlaps its own, which is fast for
// recent time ranges and a full scan for "everything of source S".
package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Record format, one per frame, big-endian:
//
//	offset size field
//	     0    4 body length n (bytes after the CRC)
//	     4    4 CRC-32C of the body
//	     8    8 timestamp_ms
//	    16    4 satellite_id
//	    20    8 sequence
//	    28    2 source length s
//	    30    s source id
//	  30+s  n-22-s the frame as a msgpack map (schemas.Frame)
//
// A record whose length runs past the end of the file, or whose CRC does
// not match, ends the readable part of a segment.

const (
	recHeader = 8
	bodyFixed = 22
	maxRecord = 1 << 20 // a frame is at most 64 KiB of payload plus ids
)

// segmentMax is the size past which Append starts a new segment (a
// variable so that tests can rotate often).
var segmentMax int64 = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks a record that fails its checksum or framing.
var ErrCorrupt = errors.New("archive: corrupt record")

// span is what the sparse index knows of one source in one segment.
type span struct {
	from, to uint64 // timestamp_ms range
	n        int    // frames
}

// appendRecord encodes one record.
func appendRecord(dst []byte, ts uint64, sat uint32, seq uint64, source, frame []byte) []byte {
	n := bodyFixed + len(source) + len(frame)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled below
	dst = binary.BigEndian.AppendUint64(dst, ts)
	dst = binary.BigEndian.AppendUint32(dst, sat)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(source)))
	dst = append(dst, source...)
	dst = append(dst, frame...)
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recHeader:], crcTable))
	return dst
}

// decodedRecord is a record read back.
type decodedRecord struct {
	ts     uint64
	sat    uint32
	seq    uint64
	source []byte
	frame  []byte
	size   int // bytes the record takes in the file
}

// decodeRecord reads the record at the start of b. io.ErrUnexpectedEOF
// means b holds only part of it (a torn tail); ErrCorrupt a bad record.
func decodeRecord(b []byte) (decodedRecord, error) {
	var r decodedRecord
	if len(b) < recHeader {
		return r, io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < bodyFixed || n > maxRecord {
		return r, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	if len(b) < recHeader+n {
		return r, io.ErrUnexpectedEOF
	}
	body := b[recHeader : recHeader+n]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return r, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r.ts = binary.BigEndian.Uint64(body)
	r.sat = binary.BigEndian.Uint32(body[8:])
	r.seq = binary.BigEndian.Uint64(body[12:])
	s := int(binary.BigEndian.Uint16(body[20:]))
	if bodyFixed+s > n {
		return r, fmt.Errorf("%w: source length %d", ErrCorrupt, s)
	}
	r.source = body[bodyFixed : bodyFixed+s]
	r.frame = body[bodyFixed+s:]
	r.size = recHeader + n
	return r, nil
}
