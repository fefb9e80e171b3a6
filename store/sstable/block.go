package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Kind says whether an entry sets a value or deletes its key.
type Kind uint8

// Entry kinds; the values match store/memtable's.
const (
	KindDelete Kind = 0
	KindSet    Kind = 1
)

// ErrCorrupt is returned when a block, filter, index or footer fails its
// checksum or structural checks.
var ErrCorrupt = errors.New("sstable: corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Block layout (data blocks and the index block), little-endian:
//
//	+--------------------------+--------------------+---------+---------+
//	| entry 0 | ... | entry n-1| offset 0..n-1: u32 | n: u32  | crc: u32|
//	+--------------------------+--------------------+---------+---------+
//
//	entry: | kind: u8 | key length: uvarint | value length: uvarint | key | value |
//
// Offsets give each entry's start so lookups binary-search without a scan.
// The CRC-32C covers everything before it. Index-block entries have kind
// KindSet, the last key of a data block as key, and a 12-byte value:
// | block offset: u64 | block length: u32 |.
const blockTrailer = 8

// Block is a decoded, verified block. It aliases its input bytes.
type Block struct {
	entries []byte
	offsets []byte // n little-endian u32
	n       int
}

// blockBuilder accumulates one block.
type blockBuilder struct {
	buf     []byte
	offsets []uint32
	lastKey []byte
}

func (b *blockBuilder) add(key []byte, kind Kind, value []byte) {
	b.offsets = append(b.offsets, uint32(len(b.buf)))
	b.buf = append(b.buf, byte(kind))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(value)))
	b.buf = append(b.buf, key...)
	b.buf = append(b.buf, value...)
	b.lastKey = append(b.lastKey[:0], key...)
}

func (b *blockBuilder) size() int { return len(b.buf) + 4*len(b.offsets) + blockTrailer }

// finish appends the encoded block to dst and resets the builder.
func (b *blockBuilder) finish(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, b.buf...)
	for _, o := range b.offsets {
		dst = binary.LittleEndian.AppendUint32(dst, o)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.offsets)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	b.buf, b.offsets = b.buf[:0], b.offsets[:0]
	return dst
}

// DecodeBlock verifies and decodes an encoded block: its CRC, that the
// offsets tile the entry area exactly, and that keys strictly increase.
func DecodeBlock(b []byte) (Block, error) {
	if len(b) < blockTrailer {
		return Block{}, fmt.Errorf("%w: block of %d bytes", ErrCorrupt, len(b))
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return Block{}, fmt.Errorf("%w: block checksum", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(body[len(body)-4:])
	if uint64(n)*4 > uint64(len(body)-4) {
		return Block{}, fmt.Errorf("%w: block entry count %d", ErrCorrupt, n)
	}
	offStart := len(body) - 4 - int(n)*4
	blk := Block{entries: body[:offStart], offsets: body[offStart : len(body)-4], n: int(n)}
	pos := 0
	var prev []byte
	for i := 0; i < blk.n; i++ {
		if int(binary.LittleEndian.Uint32(blk.offsets[4*i:])) != pos {
			return Block{}, fmt.Errorf("%w: entry %d offset", ErrCorrupt, i)
		}
		key, _, kind, next, ok := decodeEntry(blk.entries, pos)
		if !ok || kind > KindSet {
			return Block{}, fmt.Errorf("%w: entry %d", ErrCorrupt, i)
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return Block{}, fmt.Errorf("%w: keys out of order at entry %d", ErrCorrupt, i)
		}
		prev, pos = key, next
	}
	if pos != len(blk.entries) {
		return Block{}, fmt.Errorf("%w: %d stray bytes after entries", ErrCorrupt, len(blk.entries)-pos)
	}
	return blk, nil
}

func decodeEntry(b []byte, pos int) (key, value []byte, kind Kind, next int, ok bool) {
	if pos >= len(b) {
		return nil, nil, 0, 0, false
	}
	kind = Kind(b[pos])
	pos++
	kl, n := binary.Uvarint(b[pos:])
	if n <= 0 {
		return nil, nil, 0, 0, false
	}
	pos += n
	vl, n := binary.Uvarint(b[pos:])
	if n <= 0 {
		return nil, nil, 0, 0, false
	}
	pos += n
	if kl > uint64(len(b)-pos) || vl > uint64(len(b)-pos)-kl {
		return nil, nil, 0, 0, false
	}
	end := pos + int(kl) + int(vl)
	return b[pos : pos+int(kl) : pos+int(kl)], b[pos+int(kl) : end : end], kind, end, true
}

// Len returns the number of entries.
func (b Block) Len() int { return b.n }

// Entry returns entry i (0 <= i < Len). The block was verified, so this
// cannot fail.
func (b Block) Entry(i int) (key, value []byte, kind Kind) {
	key, value, kind, _, _ = decodeEntry(b.entries, int(binary.LittleEndian.Uint32(b.offsets[4*i:])))
	return key, value, kind
}

// Key returns entry i's key.
func (b Block) Key(i int) []byte {
	k, _, _ := b.Entry(i)
	return k
}

// Search returns the index of the first entry with key >= key (Len if none).
func (b Block) Search(key []byte) int {
	lo, hi := 0, b.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(b.Key(m), key) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (b Block) memSize() int64 { return int64(len(b.entries) + len(b.offsets) + 64) }
