package schemas

import (
	"errors"
	"fmt"
)

// Tle is one element set as it travels on tle.update.<source> and in the
// oor service's replies: the fields of the OOR's 82-byte TleRecord in
// snake_case, plus the catalog source and, where known, the name and the
// original two lines.
type Tle struct {
	NoradID        uint32  `msgpack:"norad_id" json:"norad_id"`
	IntlDesignator string  `msgpack:"intl_designator" json:"intl_designator"`
	Epoch          float64 `msgpack:"epoch" json:"epoch"` // YYDDD.dddddddd as in line 1
	MeanMotion     float64 `msgpack:"mean_motion" json:"mean_motion"`
	Eccentricity   float64 `msgpack:"eccentricity" json:"eccentricity"`
	Inclination    float64 `msgpack:"inclination" json:"inclination"`
	RAAN           float64 `msgpack:"raan" json:"raan"`
	ArgPerigee     float64 `msgpack:"arg_perigee" json:"arg_perigee"`
	MeanAnomaly    float64 `msgpack:"mean_anomaly" json:"mean_anomaly"`
	BStar          float64 `msgpack:"bstar" json:"bstar"`
	ElementSet     uint16  `msgpack:"element_set" json:"element_set"`
	RevNumber      uint32  `msgpack:"rev_number" json:"rev_number"`
	Source         string  `msgpack:"source" json:"source"`
	Name           string  `msgpack:"name,omitempty" json:"name,omitempty"`
	Line1          string  `msgpack:"line1,omitempty" json:"line1,omitempty"`
	Line2          string  `msgpack:"line2,omitempty" json:"line2,omitempty"`
}

// Errors returned by Tle.Validate.
var (
	ErrNoNoradID     = errors.New("tle has no norad_id")
	ErrTleOutOfRange = errors.New("tle element out of range")
)

// Bounds on an element set's text fields: a name line is 24 characters
// and an element line 69 in the standard; these leave room and refuse the
// rest (the store keeps the name with every object).
const (
	MaxTleName = 128
	MaxTleLine = 80
)

// Validate checks the ranges the element set standard defines.
func (t *Tle) Validate() error {
	switch {
	case t.NoradID == 0:
		return ErrNoNoradID
	case len(t.IntlDesignator) > 8:
		return fmt.Errorf("%w: intl_designator longer than 8", ErrTleOutOfRange)
	case !finite(t.Epoch) || t.Epoch < 0 || t.Epoch >= 100000:
		return fmt.Errorf("%w: epoch %v", ErrTleOutOfRange, t.Epoch)
	case !finite(t.Eccentricity) || t.Eccentricity < 0 || t.Eccentricity >= 1:
		return fmt.Errorf("%w: eccentricity %v", ErrTleOutOfRange, t.Eccentricity)
	case !finite(t.Inclination) || t.Inclination < 0 || t.Inclination > 180:
		return fmt.Errorf("%w: inclination %v", ErrTleOutOfRange, t.Inclination)
	case !finite(t.MeanMotion) || t.MeanMotion < 0:
		return fmt.Errorf("%w: mean_motion %v", ErrTleOutOfRange, t.MeanMotion)
	case len(t.Name) > MaxTleName || len(t.Source) > MaxTleName:
		return fmt.Errorf("%w: name or source longer than %d bytes", ErrTleOutOfRange, MaxTleName)
	case len(t.Line1) > MaxTleLine || len(t.Line2) > MaxTleLine:
		return fmt.Errorf("%w: element line longer than %d bytes", ErrTleOutOfRange, MaxTleLine)
	}
	for _, f := range [...]float64{t.RAAN, t.ArgPerigee, t.MeanAnomaly, t.BStar} {
		if !finite(f) {
			return fmt.Errorf("%w: non-finite angle or drag term", ErrTleOutOfRange)
		}
	}
	return nil
}
