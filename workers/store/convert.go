package store

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/query"
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

// ParseSources reads a catalog-provider list "id:name:priority,..." (ids
// 1-255, stored in the engine's keys, so a provider keeps its id for
// life; higher priority wins equal epochs). Empty means the default five.
func ParseSources(spec string) ([]query.SourceInfo, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	var out []query.SourceInfo
	for _, item := range strings.Split(spec, ",") {
		parts := strings.Split(strings.TrimSpace(item), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("store: source %q: want id:name:priority", item)
		}
		id, err1 := strconv.ParseUint(parts[0], 10, 8)
		prio, err2 := strconv.ParseUint(parts[2], 10, 8)
		name := parts[1]
		switch {
		case err1 != nil || id == 0:
			return nil, fmt.Errorf("store: source %q: id must be 1-255", item)
		case err2 != nil:
			return nil, fmt.Errorf("store: source %q: priority must be 0-255", item)
		case name == "" || schemas.Token(name) != name:
			return nil, fmt.Errorf("store: source %q: name must be one subject token (no '.', '*', '>' or spaces)", item)
		}
		out = append(out, query.SourceInfo{ID: query.SourceID(id), Name: name, Priority: uint8(prio)})
	}
	if _, err := catalog.New(nil, out); err != nil { // duplicate ids or names
		return nil, err
	}
	return out, nil
}
