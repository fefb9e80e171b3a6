package schemas

import (
	"bytes"
	"errors"
	"testing"
)

// viewFrame converts a scanned view back into a Frame (the Tle decoded by
// the reflection decoder) so it can be compared with Decode's result.
func viewFrame(t testing.TB, v *FrameView) Frame {
	f := Frame{StationID: string(v.StationID), SourceID: string(v.SourceID), SourceKind: SourceKind(v.SourceKind),
		Priority: Priority(v.Priority), Sequence: v.Sequence, TimestampMs: v.TimestampMs,
		SatelliteID: v.SatelliteID, Flags: v.Flags, Payload: append([]byte(nil), v.Payload...)}
	if v.Tle != nil {
		f.Tle = new(Tle)
		if err := Unmarshal(v.Tle, f.Tle); err != nil {
			t.Fatalf("scanned tle does not decode: %v", err)
		}
	}
	return f
}

// scanAll returns the frames ScanFrameBatch sees, and checks that each
// view's Raw decodes as that same frame.
func scanAll(t testing.TB, data []byte) (string, []Frame, error) {
	var got []Frame
	station, n, err := ScanFrameBatch(data, func(v FrameView) error {
		f := viewFrame(t, &v)
		var again Frame
		if err := Unmarshal(v.Raw, &again); err != nil {
			t.Fatalf("raw frame does not decode: %v", err)
		}
		if !bytes.Equal(AppendFrame(nil, &again), AppendFrame(nil, &f)) {
			t.Fatalf("raw frame %+v differs from the scanned fields %+v", again, f)
		}
		got = append(got, f)
		return nil
	})
	if err == nil && n != len(got) {
		t.Fatalf("n = %d, saw %d frames", n, len(got))
	}
	return string(station), got, err
}

func TestScanFrameBatchMatchesDecode(t *testing.T) {
	b := sampleBatch()
	b.Frames = append(b.Frames, Frame{StationID: "gs-2", Sequence: 1 << 40, SatelliteID: 1<<32 - 1, Flags: 0xff,
		Payload: bytes.Repeat([]byte{7}, 300)})
	for _, data := range [][]byte{AppendFrameBatch(nil, b), mustMarshal(t, b)} {
		station, got, err := scanAll(t, data)
		if err != nil {
			t.Fatal(err)
		}
		var want FrameBatch
		if err := Decode(data, &want); err != nil {
			t.Fatal(err)
		}
		if station != want.StationID || !bytes.Equal(AppendFrameBatch(nil, &FrameBatch{StationID: station, Frames: got}), AppendFrameBatch(nil, &want)) {
			t.Fatalf("scan: %q %+v\ndecode: %+v", station, got, want)
		}
	}
}

func TestScanFrameBatchRefuses(t *testing.T) {
	frame := func(extra ...any) []byte {
		m := map[string]any{"station_id": "s", "payload": []byte("p")}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		data, err := Marshal(map[string]any{"station_id": "s", "frames": []any{m}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for name, data := range map[string][]byte{
		"empty batch":      mustMarshal(t, map[string]any{"station_id": "s", "frames": []any{}}),
		"bad priority":     frame("priority", "urgent"),
		"bad kind":         frame("source_kind", "carrier_pigeon"),
		"negative seq":     frame("sequence", -1),
		"flags too big":    frame("flags", 256),
		"sat id too big":   frame("satellite_id", uint64(1)<<32),
		"string sequence":  frame("sequence", "1"),
		"huge payload":     frame("payload", make([]byte, MaxFrameSize+1)),
		"tle not a map":    frame("tle", 5),
		"not a map":        {0x91, 0x01},
		"truncated":        AppendFrameBatch(nil, sampleBatch())[:40],
		"trailing bytes":   append(AppendFrameBatch(nil, sampleBatch()), 0),
		"too many claimed": {0x81, 0xa6, 'f', 'r', 'a', 'm', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, _, err := ScanFrameBatch(data, func(FrameView) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// The handler's own error comes back as it is.
	stop := errors.New("stop")
	if _, _, err := ScanFrameBatch(AppendFrameBatch(nil, sampleBatch()), func(FrameView) error { return stop }); err != stop {
		t.Fatalf("err = %v, want the handler's", err)
	}
}

func TestScanFrameBatchAllocatesNothing(t *testing.T) {
	data := AppendFrameBatch(nil, sampleBatch())
	var n int
	allocs := testing.AllocsPerRun(100, func() {
		_, _, _ = ScanFrameBatch(data, func(v FrameView) error { n += len(v.Payload); return nil })
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per scan", allocs)
	}
}

func BenchmarkScanFrameBatch(b *testing.B) {
	fb := &FrameBatch{StationID: "gs-svalbard"}
	for i := range 100 {
		fb.Frames = append(fb.Frames, Frame{StationID: "gs-svalbard", SourceID: "gs-svalbard", SourceKind: KindLiveUplink,
			Priority: PriorityRoutine, Sequence: uint64(i), TimestampMs: 1764633600000, SatelliteID: 7, Payload: make([]byte, 232)})
	}
	data := AppendFrameBatch(nil, fb)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := ScanFrameBatch(data, func(FrameView) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var out FrameBatch
			if err := Decode(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzScanFrameBatch: on any input the scanner refuses or agrees with the
// reflection decoder wherever that one accepts the input too.
func FuzzScanFrameBatch(f *testing.F) {
	f.Add(AppendFrameBatch(nil, sampleBatch()))
	good, _ := Marshal(sampleBatch())
	f.Add(good)
	f.Add([]byte{0x81, 0xa6, 'f', 'r', 'a', 'm', 'e', 's', 0x91, 0x80})
	f.Add([]byte("junk"))
	withTLE := sampleBatch()
	withTLE.Frames[0].Tle = &Tle{NoradID: 25544, IntlDesignator: "98067A", Epoch: 24001.5, MeanMotion: 15.5}
	f.Add(AppendFrameBatch(nil, withTLE))
	f.Fuzz(func(t *testing.T, data []byte) {
		station, got, err := scanAll(t, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refused without ErrMalformed: %v", err)
			}
			return
		}
		var want FrameBatch
		if Decode(data, &want) != nil {
			return // accepted by the scanner, refused by reflection (a tle map with bad fields, carried verbatim)
		}
		if station != want.StationID || len(got) != len(want.Frames) {
			t.Fatalf("scan: %q, %d frames; decode: %q, %d", station, len(got), want.StationID, len(want.Frames))
		}
		for i := range got {
			if !bytes.Equal(AppendFrame(nil, &got[i]), AppendFrame(nil, &want.Frames[i])) {
				t.Fatalf("frame %d: scan %+v, decode %+v", i, got[i], want.Frames[i])
			}
		}
	})
}
