package query

import (
	"math"

	"github.com/meridian-ops/meridian/store/tle"
)

// SourceID identifies the catalog provider a row came from.
type SourceID uint8

// SourceInfo describes one catalog provider.
type SourceInfo struct {
	ID       SourceID
	Name     string
	Priority uint8 // higher wins when two sources report the same epoch
}

// Row is one catalog entry flowing between operators: a TLE record tagged
// with the source that reported it. NoradID and Epoch are copies of fields
// of Rec kept at the front so the hot comparisons touch one cache line;
// Epoch is the ordering epoch (see OrderEpoch), not the raw YYDDD value.
type Row struct {
	NoradID  uint32
	Source   SourceID
	Priority uint8
	Epoch    float64
	Rec      tle.Record
}

// NewRow tags rec with its source.
func NewRow(rec *tle.Record, src SourceID, priority uint8) Row {
	return Row{NoradID: rec.NoradID, Source: src, Priority: priority,
		Epoch: OrderEpoch(rec.Epoch), Rec: *rec}
}

// OrderEpoch turns a TLE epoch as printed (YYDDD.dddddddd) into a value that
// orders correctly across the century: two-digit years 57-99 are 1957-1999,
// 00-56 are 2000-2056 (the NORAD convention). The result is
// year*1000 + day-of-year.
func OrderEpoch(e float64) float64 {
	yy := math.Floor(e / 1000)
	day := e - yy*1000
	year := 1900 + yy
	if yy < 57 {
		year = 2000 + yy
	}
	return year*1000 + day
}

// Newer reports whether a should replace b as an object's catalog entry:
// a newer epoch wins, equal epochs go to the higher priority. A full tie is
// false, so the row seen first is kept.
func Newer(a, b *Row) bool {
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	return a.Priority > b.Priority
}

// KeyRange selects NORAD ids From..To inclusive. To == 0 means no upper
// bound (NORAD id 0 is not a catalog number), so the zero KeyRange is the
// whole catalog.
type KeyRange struct {
	From, To uint32
}

// Contains reports whether id is in the range.
func (r KeyRange) Contains(id uint32) bool {
	return id >= r.From && (r.To == 0 || id <= r.To)
}

func (r KeyRange) hi() uint32 {
	if r.To == 0 {
		return math.MaxUint32
	}
	return r.To
}

// IDEpoch is the narrow row of the course's plan: (norad_id, epoch).
type IDEpoch struct {
	NoradID uint32
	Epoch   float64
}

// ProjectIDEpoch is the Projection function producing IDEpoch; Epoch is the
// record's epoch as printed.
func ProjectIDEpoch(dst *IDEpoch, r *Row) {
	dst.NoradID, dst.Epoch = r.NoradID, r.Rec.Epoch
}

// Joined is one output row of a join: the matching left (probe / outer)
// and right (build / inner) rows. Both pointers follow the validity rule of
// Next.
type Joined struct {
	Left, Right *Row
}
