// Package tle holds the Orbital Object Registry's record type: the
// course's 82-byte TleRecord and its little-endian codec, plus (in parse.go)
// the parser for real two-line element sets.
//
// Record layout (little-endian, no padding, 82 bytes):
//
//	offset size field
//	     0    4 norad_id        u32
//	     4    8 intl_designator [8]byte, ASCII, space/zero padded ("98067A  ")
//	    12    8 epoch           f64  YYDDD.dddddddd as printed in line 1 (e.g. 20177.54743984)
//	    20    8 mean_motion     f64  revolutions per day
//	    28    8 eccentricity    f64  0..1
//	    36    8 inclination     f64  degrees
//	    44    8 raan            f64  degrees
//	    52    8 arg_perigee     f64  degrees
//	    60    8 mean_anomaly    f64  degrees
//	    68    8 bstar           f64  drag term (1/earth radii)
//	    76    2 element_set     u16
//	    78    4 rev_number      u32
//	    82
package tle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// RecordSize is the encoded size of a Record.
const RecordSize = 82

// ErrRecordSize is returned by Decode when the input is not exactly
// RecordSize bytes.
var ErrRecordSize = errors.New("tle: record must be 82 bytes")

// Record is one element set of a tracked orbital object.
type Record struct {
	NoradID        uint32
	IntlDesignator [8]byte
	Epoch          float64 // YYDDD.dddddddd, as in line 1 columns 19-32
	MeanMotion     float64
	Eccentricity   float64
	Inclination    float64
	RAAN           float64
	ArgPerigee     float64
	MeanAnomaly    float64
	BStar          float64
	ElementSet     uint16
	RevNumber      uint32
}

// AppendBinary appends the 82-byte encoding of r to b.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, r.NoradID)
	b = append(b, r.IntlDesignator[:]...)
	for _, f := range [...]float64{r.Epoch, r.MeanMotion, r.Eccentricity, r.Inclination,
		r.RAAN, r.ArgPerigee, r.MeanAnomaly, r.BStar} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.LittleEndian.AppendUint16(b, r.ElementSet)
	b = binary.LittleEndian.AppendUint32(b, r.RevNumber)
	return b, nil
}

// MarshalBinary returns the 82-byte encoding of r.
func (r *Record) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, RecordSize))
}

// Encode writes the encoding of r into dst, which must hold RecordSize bytes.
func (r *Record) Encode(dst []byte) {
	_ = dst[RecordSize-1]
	binary.LittleEndian.PutUint32(dst[0:], r.NoradID)
	copy(dst[4:12], r.IntlDesignator[:])
	for i, f := range [...]float64{r.Epoch, r.MeanMotion, r.Eccentricity, r.Inclination,
		r.RAAN, r.ArgPerigee, r.MeanAnomaly, r.BStar} {
		binary.LittleEndian.PutUint64(dst[12+8*i:], math.Float64bits(f))
	}
	binary.LittleEndian.PutUint16(dst[76:], r.ElementSet)
	binary.LittleEndian.PutUint32(dst[78:], r.RevNumber)
}

// UnmarshalBinary decodes an 82-byte record.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) != RecordSize {
		return fmt.Errorf("%w: got %d", ErrRecordSize, len(b))
	}
	r.NoradID = binary.LittleEndian.Uint32(b[0:])
	copy(r.IntlDesignator[:], b[4:12])
	fs := [...]*float64{&r.Epoch, &r.MeanMotion, &r.Eccentricity, &r.Inclination,
		&r.RAAN, &r.ArgPerigee, &r.MeanAnomaly, &r.BStar}
	for i, p := range fs {
		*p = math.Float64frombits(binary.LittleEndian.Uint64(b[12+8*i:]))
	}
	r.ElementSet = binary.LittleEndian.Uint16(b[76:])
	r.RevNumber = binary.LittleEndian.Uint32(b[78:])
	return nil
}

// Designator returns the international designator without padding.
func (r *Record) Designator() string {
	n := len(r.IntlDesignator)
	for n > 0 && (r.IntlDesignator[n-1] == ' ' || r.IntlDesignator[n-1] == 0) {
		n--
	}
	return string(r.IntlDesignator[:n])
}

// SetDesignator stores s (at most 8 bytes) space-padded.
func (r *Record) SetDesignator(s string) {
	for i := range r.IntlDesignator {
		if i < len(s) {
			r.IntlDesignator[i] = s[i]
		} else {
			r.IntlDesignator[i] = ' '
		}
	}
}
