package schemas

import (
	"bytes"
	"testing"
)

// Each decoder of outside bytes has a fuzz target; `go test` runs the seeds,
// `go test -fuzz=FuzzX ./schemas` explores.

func FuzzUnmarshalFrameBatch(f *testing.F) {
	good, _ := Marshal(sampleBatch())
	f.Add(good)
	f.Add(AppendFrameBatch(nil, &FrameBatch{StationID: "x", Frames: []Frame{{Payload: []byte("p")}}}))
	f.Add([]byte{0x82, 0xa1, 0x61})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}) // array32 claiming 4G elements
	f.Fuzz(func(t *testing.T, b []byte) {
		var fb FrameBatch
		if err := Decode(b, &fb); err != nil {
			return
		}
		// Whatever decodes and validates must re-encode and decode the same.
		again := AppendFrameBatch(nil, &fb)
		var fb2 FrameBatch
		if err := Decode(again, &fb2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(fb2.Frames) != len(fb.Frames) {
			t.Fatal("frame count changed")
		}
	})
}

func FuzzUnmarshalCommand(f *testing.F) {
	for _, m := range []any{messages()["command"], &Command{ID: "x", StationID: "y", Kind: CmdSafeMode}} {
		b, _ := Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		if err := Decode(b, &c); err != nil {
			return
		}
		if p := c.EffectivePriority(); c.Priority != nil && int(p) != *c.Priority {
			t.Fatalf("validated priority %d became %d", *c.Priority, p)
		}
	})
}

func FuzzUnmarshalOOR(f *testing.F) {
	for _, name := range []string{"tle", "tle_get_request", "tle_put_request", "tle_scan_request", "tle_snapshot_request", "catalog_merge_request"} {
		b, _ := Marshal(messages()[name])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			tl Tle
			g  TleGetRequest
			p  TlePutRequest
			s  TleScanRequest
			sn TleSnapshotRequest
			m  CatalogMergeRequest
		)
		for _, v := range []any{&tl, &g, &p, &s, &sn, &m} {
			_ = Decode(b, v)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0, 1, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 2, 'h', 'i', 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		buf := make([]byte, 0, 8)
		for {
			p, err := ReadFrame(r, buf)
			if err != nil {
				return
			}
			if len(p) == 0 || len(p) > MaxFrameSize {
				t.Fatalf("frame of %d bytes returned", len(p))
			}
			buf = p
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add([]byte("HELLO station=gs-1 format=mf1"))
	f.Add([]byte("HELLO station=gs-1 token=abc"))
	f.Add([]byte("HELLO  station==x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		h2, err := ParseHello([]byte(h.String()))
		if err != nil || h2 != h {
			t.Fatalf("%+v does not round-trip: %+v %v", h, h2, err)
		}
		if Token(h.Station) != h.Station {
			t.Fatalf("accepted station %q is not a subject token", h.Station)
		}
	})
}

func FuzzDecodeMF1(f *testing.F) {
	f.Add(AppendMF1(nil, MF1Header{Sequence: 1}, []byte("x")))
	f.Add(make([]byte, 23))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, body, err := DecodeMF1(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendMF1(nil, h, body), b) {
			t.Fatal("mf1 does not round-trip")
		}
	})
}

func FuzzDecodeDetection(f *testing.F) {
	f.Add(AppendDetection(nil, Detection{SensorID: 1, Azimuth: 10, Elevation: 20, RangeKm: 30, TimestampMs: 40}))
	f.Add(make([]byte, 25))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDetection(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendDetection(nil, d), b) {
			t.Fatal("detection does not round-trip")
		}
	})
}

// FuzzAppendBatchFrames: on any input AppendBatchFrames either refuses it
// or returns frames that, under a new header, decode as the same frames as
// the original batch.
func FuzzAppendBatchFrames(f *testing.F) {
	f.Add(AppendFrameBatch(nil, sampleBatch()))
	f.Add([]byte{0x80})
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, station, n, err := AppendBatchFrames(nil, data)
		if err != nil {
			return
		}
		var orig FrameBatch
		if Unmarshal(data, &orig) != nil {
			return // structurally fine but not a FrameBatch (e.g. wrong field types)
		}
		merged := append(AppendFrameBatchHeader(nil, string(station), n), frames...)
		var got FrameBatch
		if err := Unmarshal(merged, &got); err != nil {
			t.Fatalf("re-headed batch does not decode: %v", err)
		}
		if len(got.Frames) != len(orig.Frames) || got.StationID != orig.StationID {
			t.Fatalf("re-headed batch: %d frames from %q, original %d from %q", len(got.Frames), got.StationID, len(orig.Frames), orig.StationID)
		}
	})
}
