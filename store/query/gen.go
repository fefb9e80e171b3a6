package query

import (
	"math/rand/v2"

	"github.com/meridian-ops/meridian/store/tle"
)

// CourseSources are the five providers of the course's catalog merge, with
// the priorities Meridian gives them when two report the same epoch: the
// 18th SDS public catalog is the reference, commercial radar and optical
// providers follow.
var CourseSources = []SourceInfo{
	{ID: 1, Name: "18th SDS", Priority: 5},
	{ID: 2, Name: "ESA SST", Priority: 4},
	{ID: 3, Name: "LeoLabs", Priority: 3},
	{ID: 4, Name: "ExoAnalytic", Priority: 2},
	{ID: 5, Name: "Numerica", Priority: 1},
}

// EpochStep is the resolution of generated epochs (1/1000 day, 86.4 s):
// providers fitting the same tracking pass often publish the same epoch,
// so equal epochs, decided by priority, do occur in the generated data.
const EpochStep = 0.001

// Generate returns the course's synthetic source: n rows, NORAD ids 1..n in
// order, epoch 84.0 + [0, 0.5) days, inclination [0, 180), mean motion
// [14, 16), deterministic per source id and seed.
func Generate(src SourceInfo, n int, seed uint64) []Row {
	rng := rand.New(rand.NewPCG(seed, uint64(src.ID)))
	rows := make([]Row, n)
	for i := range rows {
		rec := tle.Record{
			NoradID:      uint32(i + 1),
			Epoch:        84.0 + float64(rng.IntN(500))*EpochStep,
			Inclination:  rng.Float64() * 180,
			MeanMotion:   14 + rng.Float64()*2,
			Eccentricity: rng.Float64() * 0.01,
			RAAN:         rng.Float64() * 360,
			ArgPerigee:   rng.Float64() * 360,
			MeanAnomaly:  rng.Float64() * 360,
			ElementSet:   999,
			RevNumber:    uint32(rng.IntN(100000)),
		}
		rec.SetDesignator("")
		rows[i] = NewRow(&rec, src.ID, src.Priority)
	}
	return rows
}
