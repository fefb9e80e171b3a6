package tle

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	issName = "ISS (ZARYA)             "
	issL1   = "1 25544U 98067A   20172.98069473  .00001703  00000-0  38486-4 0  9992"
	issL2   = "2 25544  51.6450 329.6905 0002439  66.8167  80.0217 15.49454309232604"
)

func dataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data", "tle")
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/data/tle"
		if _, err := os.Stat(dir); err != nil {
			t.Skip("real TLE data not found at ../../../shared/data/tle")
		}
	}
	return dir
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestParseISS(t *testing.T) {
	s, err := ParseSet(issName, issL1, issL2)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Record
	checks := []struct {
		what      string
		got, want float64
	}{
		{"epoch", r.Epoch, 20172.98069473},
		{"ndot", s.MeanMotionDot, 0.00001703},
		{"nddot", s.MeanMotionDDot, 0},
		{"bstar", r.BStar, 0.38486e-4},
		{"incl", r.Inclination, 51.6450},
		{"raan", r.RAAN, 329.6905},
		{"ecc", r.Eccentricity, 0.0002439},
		{"argp", r.ArgPerigee, 66.8167},
		{"M", r.MeanAnomaly, 80.0217},
		{"n", r.MeanMotion, 15.49454309},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if s.Name != "ISS (ZARYA)" || r.NoradID != 25544 || r.Designator() != "98067A" ||
		r.ElementSet != 999 || r.RevNumber != 23260 || s.Classification != 'U' {
		t.Fatalf("got %+v", s)
	}
	// Day 172.98069473 of 2020 (leap year): 20 June, 23:32:12.025 UTC.
	want := time.Date(2020, 6, 20, 23, 32, 12, 25_000_000, time.UTC)
	if d := s.EpochTime.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("epoch time %v, want %v", s.EpochTime, want)
	}
}

func TestEpochCentury(t *testing.T) {
	if y := EpochTime(57001).Year(); y != 1957 {
		t.Fatalf("57 -> %d", y)
	}
	if y := EpochTime(56001).Year(); y != 2056 {
		t.Fatalf("56 -> %d", y)
	}
	if got := EpochTime(24045.5); !got.Equal(time.Date(2024, 2, 14, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("24045.5 -> %v", got)
	}
}

func TestExponentFields(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
	}{
		{" 38486-4", 0.38486e-4},
		{"-11606-4", -0.11606e-4},
		{" 00000-0", 0},
		{" 12345+1", 1.2345},
		{"        ", 0},
	} {
		got, e := parseExp(c.in, 1, "x")
		if e != nil || !near(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, e, c.want)
		}
	}
	if _, e := parseExp(" 1x345-4", 1, "x"); e == nil {
		t.Error("bad mantissa accepted")
	}
}

func TestAlpha5(t *testing.T) {
	for in, want := range map[string]uint32{"A0000": 100000, "H9999": 179999, "J0000": 180000, "P0001": 230001, "Z9999": 339999, "25544": 25544} {
		got, e := parseSatnum(in, 1)
		if e != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, e, want)
		}
	}
	if _, e := parseSatnum("I0000", 1); e == nil {
		t.Error("Alpha-5 I accepted")
	}
}

// Every set in the real catalogs parses, CRLF and LF alike, and
// round-trips through the 82-byte record.
func TestRealCatalogs(t *testing.T) {
	dir := dataDir(t)
	for file, want := range map[string]int{"stations-tle.txt": 71, "stations.txt": 3} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		sets, err := ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(sets) != want {
			t.Fatalf("%s: %d sets, want %d", file, len(sets), want)
		}
		for _, s := range sets {
			if s.Name == "" || s.Record.NoradID == 0 || s.Record.MeanMotion < 1 || s.Record.Eccentricity >= 1 ||
				s.EpochTime.Year() != 2020 || strings.ContainsAny(s.Name, "\r\n") {
				t.Fatalf("%s: implausible set %+v", file, s)
			}
			b, _ := s.Record.MarshalBinary()
			var back Record
			if err := back.UnmarshalBinary(b); err != nil || back != s.Record {
				t.Fatalf("%s: record round trip of %d", file, s.Record.NoradID)
			}
		}
		if file == "stations-tle.txt" && (sets[0].Name != "ISS (ZARYA)" || sets[0].Record.NoradID != 25544) {
			t.Fatalf("first set %+v", sets[0])
		}
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	bad := issL1[:68] + "3" // wrong checksum
	in := issName + "\n" + issL1 + "\n" + issL2 + "\n\n" + "NEXT\r\n" + bad + "\r\n" + issL2 + "\r\n"
	r := NewReader(strings.NewReader(in))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrChecksum) || pe.Line != 6 || pe.Col != 69 || pe.Text != bad {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "line 6") {
		t.Fatalf("message %q does not name the line", err)
	}
	cases := map[string]string{
		"short line":    issL1[:60] + "\n" + issL2,
		"swapped lines": issL2 + "\n" + issL1,
		"id mismatch":   issL1 + "\n" + fixSum("2 25545"+issL2[7:]),
		"bad incl":      issL1 + "\n" + fixSum(issL2[:8]+"  51.6x5"+issL2[16:]),
		"bad ecc":       issL1 + "\n" + fixSum(issL2[:26]+"00-2439"+issL2[33:]),
		"missing line2": issName + "\n" + issL1,
		"name only":     issName,
	}
	for name, in := range cases {
		_, err := ReadAll(strings.NewReader(in))
		if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if sets, err := ReadAll(strings.NewReader(issL1 + "\n" + issL2 + "\n")); err != nil || len(sets) != 1 || sets[0].Name != "" {
		t.Fatalf("nameless set: %v %v", sets, err)
	}
	if _, err := NewReader(strings.NewReader("")).Next(); err != io.EOF {
		t.Fatalf("empty input: %v", err)
	}
}

func fixSum(l string) string { return l[:68] + string(rune('0'+Checksum(l))) }

func FuzzParseSet(f *testing.F) {
	f.Add(issName, issL1, issL2)
	f.Add("", "1 A0001U 26001A   26001.50000000 -.00001000 -12345-5 -11606-4 0  999", issL2)
	f.Add("0 NAME", issL1[:68]+"0", "")
	f.Fuzz(func(t *testing.T, name, l1, l2 string) {
		s, err := ParseSet(name, l1, l2)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || (!errors.Is(err, ErrSyntax) && !errors.Is(err, ErrChecksum)) {
				t.Fatalf("error %v is not a ParseError with a sentinel", err)
			}
			return
		}
		// Accepted lines have valid checksums and produce a finite record.
		if Checksum(cleanLine(l1)) != int(cleanLine(l1)[68]-'0') {
			t.Fatal("accepted a bad checksum")
		}
		r := s.Record
		for _, v := range []float64{r.Epoch, r.MeanMotion, r.Eccentricity, r.Inclination, r.BStar} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite field in %+v", r)
			}
		}
	})
}

func BenchmarkParseSet(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSet(issName, issL1, issL2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
}

// A bad line costs exactly its own set: the reader resynchronizes on the
// next set and reports the right line numbers.
func TestReaderResyncsAfterBadLine(t *testing.T) {
	bad := issL1[:68] + "0" // wrong checksum
	in := strings.Join([]string{issName, issL1, issL2, "BROKEN", bad, issL2, issL1, issL2, issL2, issName, issL1, issL2}, "\n")
	r := NewReader(strings.NewReader(in))
	var good int
	var errLines []int
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			errLines = append(errLines, pe.Line)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		good++
	}
	if good != 3 || fmt.Sprint(errLines) != "[5 9]" {
		t.Fatalf("good sets %d, errors at lines %v; want 3 and [5 9]", good, errLines)
	}
}
