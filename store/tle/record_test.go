package tle

import (
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	in := Record{NoradID: 25544, Epoch: 20177.54743984, MeanMotion: 15.49459678,
		Eccentricity: 0.0002519, Inclination: 51.6448, RAAN: 307.0852, ArgPerigee: 82.7533,
		MeanAnomaly: 354.3691, BStar: 0.19557e-4, ElementSet: 999, RevNumber: 23331}
	in.SetDesignator("98067A")
	b, err := in.MarshalBinary()
	if err != nil || len(b) != RecordSize {
		t.Fatalf("marshal: %d bytes, %v", len(b), err)
	}
	var enc [RecordSize]byte
	in.Encode(enc[:])
	if string(enc[:]) != string(b) {
		t.Fatal("Encode and MarshalBinary disagree")
	}
	var out Record
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
	if out.Designator() != "98067A" {
		t.Fatalf("designator %q", out.Designator())
	}
	if b[0] != 0xC8 || b[1] != 0x63 { // 25544 = 0x63C8, little-endian
		t.Fatalf("norad id not little-endian: % x", b[:4])
	}
}

func TestRecordWrongSize(t *testing.T) {
	var r Record
	if err := r.UnmarshalBinary(make([]byte, 81)); !errors.Is(err, ErrRecordSize) {
		t.Fatalf("got %v", err)
	}
}

func FuzzRecordDecode(f *testing.F) {
	f.Add(make([]byte, RecordSize))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := r.MarshalBinary()
		var r2 Record
		if err := r2.UnmarshalBinary(out); err != nil {
			t.Fatal(err)
		}
		// NaN payloads compare unequal; compare encodings instead.
		out2, _ := r2.MarshalBinary()
		if string(out) != string(out2) {
			t.Fatal("re-encode differs")
		}
	})
}
