// Package bloom is the per-SSTable bloom filter of the OOR LSM engine: a
// bit array that answers "definitely absent" or "maybe present" for a key,
// letting store/lsm skip an SSTable without reading any of its blocks.
//
// Guarantees: no false negatives for keys added to the Builder. With 10
// bits per key (the engine default) the false-positive rate is about 1%.
// The hash is fixed (not seeded per process), so filters written to disk
// stay valid across runs and machines.
//
// Encoding (the filter block's payload; the SSTable adds its own checksum):
//
//	+----------------------------+-----------+
//	| bit array (n*8 bytes)      | k (1 byte)|
//	+----------------------------+-----------+
//
// Bit i lives in byte i/8, bit i%8. Probe j of hash h (h1 = low 32 bits,
// h2 = high 32 bits) tests bit (h1 + j*h2) mod nbits, for j in [0, k).
package bloom

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
)

// ErrCorrupt is returned by Decode for a filter that cannot be valid.
var ErrCorrupt = errors.New("bloom: corrupt filter")

// Filter is a decoded filter; it aliases the bytes it was decoded from.
type Filter struct {
	bits  []byte
	nbits uint64
	k     uint32
}

const (
	prime1 = 11400714785074694791
	prime2 = 14029467366897019727
	prime3 = 1609587929392839161
	prime4 = 9650029242287828579
	prime5 = 2870177450012600261
)

// Hash is the filter's 64-bit key hash (an xxHash64-style mix, unseeded).
func Hash(b []byte) uint64 {
	h := prime5 + uint64(len(b))
	for len(b) >= 8 {
		k := binary.LittleEndian.Uint64(b) * prime2
		k = bits.RotateLeft64(k, 31) * prime1
		h ^= k
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
		b = b[8:]
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b)) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

// Builder collects key hashes for one filter.
type Builder struct{ hashes []uint64 }

// Add records key.
func (b *Builder) Add(key []byte) { b.hashes = append(b.hashes, Hash(key)) }

// AddHash records a precomputed Hash.
func (b *Builder) AddHash(h uint64) { b.hashes = append(b.hashes, h) }

// Len returns the number of keys added.
func (b *Builder) Len() int { return len(b.hashes) }

// Reset empties the builder, keeping its memory.
func (b *Builder) Reset() { b.hashes = b.hashes[:0] }

// Finish appends the encoded filter to dst with bitsPerKey bits per key
// (<= 0 means 10).
func (b *Builder) Finish(dst []byte, bitsPerKey int) []byte {
	if bitsPerKey <= 0 {
		bitsPerKey = 10
	}
	k := uint32(math.Round(float64(bitsPerKey) * math.Ln2))
	k = max(1, min(k, 30))
	nbits := uint64(len(b.hashes) * bitsPerKey)
	nbits = max(64, (nbits+63)/64*64)
	start := len(dst)
	dst = append(dst, make([]byte, nbits/8)...)
	arr := dst[start:]
	for _, h := range b.hashes {
		h1, h2 := h&0xffffffff, h>>32
		for j := uint64(0); j < uint64(k); j++ {
			bit := (h1 + j*h2) % nbits
			arr[bit/8] |= 1 << (bit % 8)
		}
	}
	return append(dst, byte(k))
}

// Decode parses an encoded filter without copying.
func Decode(b []byte) (Filter, error) {
	if len(b) < 9 || (len(b)-1)%8 != 0 {
		return Filter{}, ErrCorrupt
	}
	k := uint32(b[len(b)-1])
	if k == 0 || k > 30 {
		return Filter{}, ErrCorrupt
	}
	return Filter{bits: b[:len(b)-1], nbits: uint64(len(b)-1) * 8, k: k}, nil
}

// MayContain reports whether the key with hash h may have been added.
// A zero Filter (no filter) always answers true.
func (f Filter) MayContain(h uint64) bool {
	if f.nbits == 0 {
		return true
	}
	h1, h2 := h&0xffffffff, h>>32
	for j := uint64(0); j < uint64(f.k); j++ {
		bit := (h1 + j*h2) % f.nbits
		if f.bits[bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

// MayContainKey is MayContain(Hash(key)).
func (f Filter) MayContainKey(key []byte) bool { return f.MayContain(Hash(key)) }

// Empty reports whether f is the zero Filter (no filter).
func (f Filter) Empty() bool { return f.nbits == 0 }
