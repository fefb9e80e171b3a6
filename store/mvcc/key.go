package mvcc

import (
	"encoding/binary"
	"errors"
)

// Key layout in the LSM (bytewise order):
//
//	data:  'd' | escape(user key) | 0x00 0x01 | ^commit_ts (8 bytes, big-endian)
//	meta:  'm' | name
//
// escape doubles every 0x00 of the user key as 0x00 0xFF, so the 0x00 0x01
// terminator sorts below any continuation: user keys keep their bytewise
// order, a key's versions are contiguous, and no user key's encoding is a
// prefix of another's. Inverting the timestamp makes the newest version of a
// key sort first, so "newest version at or below ts" is one SeekGE to
// encode(key, ts).
const (
	prefixData = 'd'
	prefixMeta = 'm'
	tsLen      = 8
)

var metaLastTS = []byte{prefixMeta, 't', 's'}

// ErrBadKey marks an LSM key that is not an MVCC data key.
var ErrBadKey = errors.New("mvcc: malformed versioned key")

// appendPrefix appends the version-independent part of key's encoding.
func appendPrefix(dst, key []byte) []byte {
	dst = append(dst, prefixData)
	for _, c := range key {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, 0, 1)
}

// AppendKey appends the LSM key of key's version at ts to dst.
func AppendKey(dst, key []byte, ts uint64) []byte {
	dst = appendPrefix(dst, key)
	return binary.BigEndian.AppendUint64(dst, ^ts)
}

// DecodeKey splits an encoded versioned key into the user key (appended to
// dst) and the version's timestamp.
func DecodeKey(dst, enc []byte) ([]byte, uint64, error) {
	if len(enc) < 1+2+tsLen || enc[0] != prefixData {
		return dst, 0, ErrBadKey
	}
	body, ts := enc[1:len(enc)-tsLen], ^binary.BigEndian.Uint64(enc[len(enc)-tsLen:])
	for i := 0; i < len(body); i++ {
		if body[i] != 0 {
			dst = append(dst, body[i])
			continue
		}
		if i+1 >= len(body) {
			return dst, 0, ErrBadKey
		}
		switch body[i+1] {
		case 0xFF:
			dst = append(dst, 0)
			i++
		case 1:
			if i+2 != len(body) {
				return dst, 0, ErrBadKey
			}
			return dst, ts, nil
		default:
			return dst, 0, ErrBadKey
		}
	}
	return dst, 0, ErrBadKey
}

// versionPrefix returns the encoded key without its timestamp.
func versionPrefix(enc []byte) []byte { return enc[:len(enc)-tsLen] }

func versionTS(enc []byte) uint64 { return ^binary.BigEndian.Uint64(enc[len(enc)-tsLen:]) }

// Values carry a one-byte kind so that a delete is a version of its own.
const (
	kindDelete byte = 0
	kindPut    byte = 1
)
