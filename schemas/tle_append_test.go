package schemas

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randTle(r *rand.Rand) Tle {
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		return strings.Repeat("x", r.IntN(300))
	}
	f := func() float64 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return math.Inf(1)
		default:
			return r.NormFloat64() * 1e6
		}
	}
	return Tle{NoradID: r.Uint32() >> r.IntN(32), IntlDesignator: str(), Epoch: f(), MeanMotion: f(), Eccentricity: f(),
		Inclination: f(), RAAN: f(), ArgPerigee: f(), MeanAnomaly: f(), BStar: f(), ElementSet: uint16(r.Uint32() >> r.IntN(32)),
		RevNumber: r.Uint32() >> r.IntN(32), Source: str(), Name: str(), Line1: str(), Line2: str()}
}

// The hand-written encoders write byte for byte what Marshal writes.
func TestAppendMsgpackMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	check := func(v interface {
		Appender
	}) {
		t.Helper()
		want, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.AppendMsgpack(nil); !bytes.Equal(got, want) {
			t.Fatalf("%T: AppendMsgpack\n%x\nMarshal\n%x", v, got, want)
		}
	}
	for i := 0; i < 500; i++ {
		tl := randTle(r)
		check(&tl)
		var tles []Tle
		if r.IntN(4) > 0 {
			tles = []Tle{}
			for j := r.IntN(20); j > 0; j-- {
				tles = append(tles, randTle(r))
			}
		}
		get := TleGetReply{Found: r.IntN(2) == 0, AsOf: r.Uint64() >> r.IntN(64), CommitTs: r.Uint64() >> r.IntN(64)}
		if r.IntN(2) == 0 {
			get.Tle = &tl
		}
		check(&get)
		check(&TleScanReply{Tles: tles, More: r.IntN(2) == 0, AsOf: r.Uint64()})
		snap := TleSnapshotReply{AsOf: r.Uint64() >> r.IntN(64), Tles: tles}
		for j := r.IntN(4); j > 0; j-- {
			snap.Missing = append(snap.Missing, r.Uint32()>>r.IntN(32))
		}
		check(&snap)
	}
}

// Oversized text fields are refused before they reach the store.
func TestTleValidateBoundsText(t *testing.T) {
	ok := Tle{NoradID: 1, Epoch: 24001, MeanMotion: 15, Name: strings.Repeat("n", MaxTleName), Line1: strings.Repeat("1", MaxTleLine)}
	if err := ok.Validate(); err != nil {
		t.Fatalf("at the bounds: %v", err)
	}
	for _, bad := range []Tle{
		{NoradID: 1, Name: strings.Repeat("n", MaxTleName+1)},
		{NoradID: 1, Source: strings.Repeat("s", MaxTleName+1)},
		{NoradID: 1, Line2: strings.Repeat("2", MaxTleLine+1)},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrTleOutOfRange) {
			t.Fatalf("oversized %+v: err = %v", bad, err)
		}
	}
}
