package lsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/meridian-ops/meridian/store/memtable"
)

// ErrBatchCorrupt is returned by Open when a WAL record that passed its
// checksum does not decode as a batch (a bug or deliberate tampering, not
// a torn write).
var ErrBatchCorrupt = errors.New("lsm: corrupt batch")

// Batch is an atomic group of puts and deletes. The zero value is an empty
// batch. A Batch is not safe for concurrent use.
//
// Encoding (the WAL record payload), a sequence of entries:
//
//	+-----------+----------------------+------------------------+-----+-------+
//	| kind: u8  | key length: uvarint  | value length: uvarint  | key | value |
//	+-----------+----------------------+------------------------+-----+-------+
//
// kind 1 = put, 0 = delete (value length 0). Later entries for the same key
// win.
type Batch struct {
	data  []byte
	count int
}

func (b *Batch) add(kind memtable.Kind, key, value []byte) {
	b.data = append(b.data, byte(kind))
	b.data = binary.AppendUvarint(b.data, uint64(len(key)))
	b.data = binary.AppendUvarint(b.data, uint64(len(value)))
	b.data = append(b.data, key...)
	b.data = append(b.data, value...)
	b.count++
}

// Put sets key to value.
func (b *Batch) Put(key, value []byte) { b.add(memtable.KindSet, key, value) }

// Delete removes key.
func (b *Batch) Delete(key []byte) { b.add(memtable.KindDelete, key, nil) }

// Len returns the number of entries.
func (b *Batch) Len() int { return b.count }

// Size returns the encoded size in bytes.
func (b *Batch) Size() int { return len(b.data) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() { b.data, b.count = b.data[:0], 0 }

// decodeBatch validates an encoded batch completely before calling fn for
// each entry, so a bad batch applies nothing.
func decodeBatch(data []byte, fn func(kind memtable.Kind, key, value []byte)) (int, error) {
	n, err := walkBatch(data, nil)
	if err != nil || fn == nil {
		return n, err
	}
	return walkBatch(data, fn)
}

func walkBatch(data []byte, fn func(kind memtable.Kind, key, value []byte)) (int, error) {
	n := 0
	for pos := 0; pos < len(data); n++ {
		kind := memtable.Kind(data[pos])
		if kind > memtable.KindSet {
			return n, fmt.Errorf("%w: entry %d kind %d", ErrBatchCorrupt, n, kind)
		}
		pos++
		kl, m := binary.Uvarint(data[pos:])
		if m <= 0 || m != uvarintLen(kl) { // exactly one encoding of each length is valid
			return n, fmt.Errorf("%w: entry %d key length", ErrBatchCorrupt, n)
		}
		pos += m
		vl, m := binary.Uvarint(data[pos:])
		if m <= 0 || m != uvarintLen(vl) {
			return n, fmt.Errorf("%w: entry %d value length", ErrBatchCorrupt, n)
		}
		pos += m
		if kl > uint64(len(data)-pos) || vl > uint64(len(data)-pos)-kl || (kind == memtable.KindDelete && vl != 0) {
			return n, fmt.Errorf("%w: entry %d lengths", ErrBatchCorrupt, n)
		}
		key := data[pos : pos+int(kl)]
		pos += int(kl)
		val := data[pos : pos+int(vl)]
		pos += int(vl)
		if fn != nil {
			fn(kind, key, val)
		}
	}
	return n, nil
}

// uvarintLen is the length of v's minimal uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
