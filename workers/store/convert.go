package store

import (
	"strings"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/tle"
)

// ToRecord converts a bus element set to the engine's 82-byte record.
func ToRecord(t *schemas.Tle) tle.Record {
	r := tle.Record{
		NoradID: t.NoradID, Epoch: t.Epoch, MeanMotion: t.MeanMotion, Eccentricity: t.Eccentricity,
		Inclination: t.Inclination, RAAN: t.RAAN, ArgPerigee: t.ArgPerigee, MeanAnomaly: t.MeanAnomaly,
		BStar: t.BStar, ElementSet: t.ElementSet, RevNumber: t.RevNumber,
	}
	r.SetDesignator(t.IntlDesignator)
	return r
}

// fromEntry converts a resolved catalog entry to the bus shape.
func fromEntry(e *catalog.Entry) schemas.Tle {
	r := &e.Rec
	return schemas.Tle{
		NoradID: r.NoradID, IntlDesignator: r.Designator(), Epoch: r.Epoch,
		MeanMotion: r.MeanMotion, Eccentricity: r.Eccentricity, Inclination: r.Inclination, RAAN: r.RAAN,
		ArgPerigee: r.ArgPerigee, MeanAnomaly: r.MeanAnomaly, BStar: r.BStar, ElementSet: r.ElementSet,
		RevNumber: r.RevNumber, Source: e.Source, Name: strings.TrimSpace(e.Name),
	}
}

// FromSet converts a parsed element set to the bus shape for source.
func FromSet(s *tle.Set, source string) schemas.Tle {
	e := catalog.Entry{Rec: s.Record, Source: source, Name: s.Name}
	return fromEntry(&e)
}
