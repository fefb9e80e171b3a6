package schemas

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func ptr[T any](v T) *T { return &v }

func sampleBatch() *FrameBatch {
	return &FrameBatch{StationID: "gs-svalbard", Frames: []Frame{
		{StationID: "gs-svalbard", SourceID: "gs-svalbard", SourceKind: KindLiveUplink, Priority: PriorityRoutine,
			Sequence: 42, TimestampMs: 1_764_000_000_123, SatelliteID: 7, Flags: 0, Payload: []byte{1, 2, 3}},
		{StationID: "gs-svalbard", SourceID: "gs-svalbard", SourceKind: KindLiveUplink, Priority: PriorityEmergency,
			Sequence: 1 << 40, TimestampMs: 1_764_000_000_124, SatelliteID: 48, Flags: FlagEmergency, Payload: bytes.Repeat([]byte{0xab}, 300)},
	}}
}

func sampleTle() Tle {
	return Tle{NoradID: 25544, IntlDesignator: "98067A", Epoch: 20177.54743984, MeanMotion: 15.49459678,
		Eccentricity: 0.0002519, Inclination: 51.6448, RAAN: 307.0852, ArgPerigee: 82.7533, MeanAnomaly: 354.3691,
		BStar: 0.19557e-4, ElementSet: 999, RevNumber: 23331, Source: "18th-sds", Name: "ISS (ZARYA)"}
}

// messages lists one sample of every bus message, by golden file name.
func messages() map[string]any {
	tle := sampleTle()
	return map[string]any{
		"frame_batch":           sampleBatch(),
		"command":               &Command{ID: "c-1", StationID: "gs-atacama", Kind: CmdRepoint, Priority: ptr(120), Azimuth: ptr(180.0), Elevation: ptr(45.0), IssuedAtNs: 1_764_000_000_000_000_000},
		"tle":                   &tle,
		"pipeline_stats":        &PipelineStats{FramesIngested: 10, FramesRouted: 9, FramesProcessed: 8, EmergencyCount: 2, DuplicatesDropped: 1, InvalidDropped: 1, UpdatedAtMs: 1_764_000_000_000},
		"cmdqueue_stats":        &CmdQueueStats{CommandsPushed: 15, CommandsDispatched: 15, SafeModeCount: 3, Depth: 0, UpdatedAtMs: 1_764_000_000_000},
		"session_state":         &SessionState{StationID: "gs-1", Phase: PhaseReconnecting, Attempt: 3, NextRetryMs: 1_764_000_004_000, Origin: "gs-client", UpdatedAtMs: 1_764_000_000_000},
		"source":                &Source{SourceID: "gs-1", Kind: KindLiveUplink, StationID: "gs-1", RegisteredAtMs: 1_764_000_000_000},
		"detection":             &Detection{SensorID: 9, Azimuth: 12.5, Elevation: 33, RangeKm: 812.25, TimestampMs: 1_764_000_000_000},
		"tle_get_request":       &TleGetRequest{NoradID: 25544, AsOf: ptr(uint64(1_764_000_000_000_000_000))},
		"tle_get_reply":         &TleGetReply{Found: true, Tle: &tle, CommitTs: 5, AsOf: 6},
		"tle_put_request":       &TlePutRequest{Tle: tle},
		"tle_scan_request":      &TleScanRequest{From: 5000, To: 5100, Limit: 50},
		"tle_scan_reply":        &TleScanReply{Tles: []Tle{tle}, More: true, AsOf: 7},
		"tle_snapshot_request":  &TleSnapshotRequest{NoradIDs: []uint32{1, 2, 25544}},
		"tle_snapshot_reply":    &TleSnapshotReply{AsOf: 8, Tles: []Tle{tle}, Missing: []uint32{1, 2}},
		"catalog_merge_request": &CatalogMergeRequest{Samples: 10},
		"catalog_merge_reply":   &CatalogMergeReply{AsOf: 9, RowsIn: 500000, Objects: 100000, Conflicts: 400000, BySource: map[string]int{"leolabs": 100000}, Samples: []MergeSample{{NoradID: 1, WinnerSource: "leolabs", Epoch: 26001.5, Candidates: 5}}, ElapsedUs: 42000},
		"store_stats":           &StoreStats{Objects: 71, Commits: 71, SSTables: []int{1, 2}, Watermark: 3, UpdatedAtMs: 4},
	}
}

func TestRoundTripAndGolden(t *testing.T) {
	for name, msg := range messages() {
		t.Run(name, func(t *testing.T) {
			b, err := Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			out := reflect.New(reflect.TypeOf(msg).Elem()).Interface()
			if err := Decode(b, out); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(msg, out) {
				t.Fatalf("round trip differs:\n in %+v\nout %+v", msg, out)
			}
			golden := filepath.Join("testdata", name+".msgpack.hex")
			if *update {
				if err := os.WriteFile(golden, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden file missing (run go test ./schemas -update): %v", err)
			}
			if got := hex.EncodeToString(b); got != strings.TrimSpace(string(want)) {
				t.Fatalf("encoding of %s changed: the bus contract is versioned by these files.\n got %s\nwant %s", name, got, want)
			}
		})
	}
}

// Keys must be snake_case msgpack map keys, decodable by any msgpack library.
func TestEncodingIsSnakeCaseMap(t *testing.T) {
	b, _ := Marshal(sampleBatch())
	var generic map[string]any
	if err := msgpack.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	frames := generic["frames"].([]any)
	f0 := frames[0].(map[string]any)
	for _, k := range []string{"station_id", "source_id", "source_kind", "priority", "sequence", "timestamp_ms", "satellite_id", "flags", "payload"} {
		if _, ok := f0[k]; !ok {
			t.Errorf("frame map lacks key %q (has %v)", k, f0)
		}
	}
	if _, ok := f0["payload"].([]byte); !ok {
		t.Errorf("payload is %T, want bin", f0["payload"])
	}
}

func TestFastEncoderMatches(t *testing.T) {
	b := sampleBatch()
	tle := sampleTle()
	b.Frames = append(b.Frames, Frame{StationID: strings.Repeat("s", 40), Payload: nil, Tle: &tle, Sequence: 1 << 33, TimestampMs: 300})
	for n := range []int{0, 1, 20, 70000} {
		b.Frames = append(b.Frames, Frame{Sequence: uint64(n), Payload: make([]byte, n)})
	}
	fast := AppendFrameBatch(nil, b)
	var got FrameBatch
	if err := Unmarshal(fast, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*b, got) {
		t.Fatalf("fast encoding decodes differently:\n in %+v\nout %+v", b, got)
	}
	slow, _ := Marshal(b)
	var got2 FrameBatch
	if err := Unmarshal(slow, &got2); err != nil || !reflect.DeepEqual(got, got2) {
		t.Fatalf("Marshal and AppendFrameBatch disagree: %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := Marshal(sampleBatch())
	cases := map[string][]byte{
		"garbage":   {0xc1, 0x00},
		"truncated": good[:len(good)/2],
		"trailing":  append(append([]byte{}, good...), 0x00),
		"wrongtype": mustMarshal(t, map[string]any{"station_id": 5, "frames": "x"}),
		"empty":     {},
	}
	for name, b := range cases {
		var fb FrameBatch
		if err := Decode(b, &fb); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	var fb FrameBatch
	if err := Decode(mustMarshal(t, &FrameBatch{StationID: "x"}), &fb); !errors.Is(err, ErrNoFrames) || !errors.Is(err, ErrMalformed) {
		t.Errorf("empty batch: %v", err)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandValidate(t *testing.T) {
	ok := Command{ID: "1", StationID: "gs", Kind: CmdSafeMode}
	if err := ok.Validate(); err != nil || ok.EffectivePriority() != 255 {
		t.Fatalf("safe mode: %v prio %d", err, ok.EffectivePriority())
	}
	cases := []struct {
		c    Command
		want error
	}{
		{Command{ID: "1", StationID: "gs", Kind: "LAUNCH"}, ErrUnknownKind},
		{Command{ID: "1", Kind: CmdSafeMode}, ErrMissingStation},
		{Command{StationID: "gs", Kind: CmdSafeMode}, ErrMissingID},
		{Command{ID: "1", StationID: "gs", Kind: CmdSafeMode, Priority: ptr(256)}, ErrPriorityRange},
		{Command{ID: "1", StationID: "gs", Kind: CmdSafeMode, Priority: ptr(-1)}, ErrPriorityRange},
		{Command{ID: "1", StationID: "gs", Kind: CmdRepoint}, ErrRepointAngles},
		{Command{ID: "1", StationID: "gs", Kind: CmdRepoint, Azimuth: ptr(360.0), Elevation: ptr(0.0)}, ErrRepointAngles},
		{Command{ID: "1", StationID: "gs", Kind: CmdStatusRequest, Azimuth: ptr(1.0)}, ErrAnglesNotAllowed},
	}
	for _, c := range cases {
		if err := c.c.Validate(); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v want %v", c.c, err, c.want)
		}
	}
	for k, want := range map[CommandKind]uint8{CmdSafeMode: 255, CmdAbortPass: 200, CmdRepoint: 100, CmdStatusRequest: 50, CmdHousekeeping: 10} {
		if p, _ := DefaultPriority(k); p != want {
			t.Errorf("%s: %d", k, p)
		}
	}
}

func TestSubjects(t *testing.T) {
	cases := map[string]string{
		IngestSubject("gs-3@10.0.0.7:5012"):      "tlm.ingest.gs-3@10_0_0_7:5012",
		RoutedSubject(PriorityEmergency, "gs-1"): "tlm.routed.emergency.gs-1",
		RoutedSubject(PriorityRoutine, "a*b>"):   "tlm.routed.routine.a_b_",
		ProcessedSubject(""):                     "tlm.processed._",
		DetectionSubject(4294967295):             "sda.detections.4294967295",
		DetectionSubject(0):                      "sda.detections.0",
		DispatchSubject("gs 1"):                  "cmd.dispatch.gs_1",
		TLESubject("esa-sst"):                    "tle.update.esa-sst",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
	if k := KVKey("gs-3@10.0.0.7:5012"); k != "gs-3_10_0_0_7_5012" {
		t.Errorf("KVKey %q", k)
	}
	if KVKey("") != "_" || KVKey("gs-svalbard") != "gs-svalbard" {
		t.Error("KVKey")
	}
	if LastToken("tlm.ingest.gs-1") != "gs-1" {
		t.Error("LastToken")
	}
}

func TestReadFrame(t *testing.T) {
	var stream bytes.Buffer
	_ = WriteFrame(&stream, []byte("hello"))
	_ = WriteFrame(&stream, bytes.Repeat([]byte{7}, MaxFrameSize))
	buf := make([]byte, 0, 16)
	p, err := ReadFrame(&stream, buf)
	if err != nil || string(p) != "hello" {
		t.Fatalf("%q %v", p, err)
	}
	p, err = ReadFrame(&stream, p)
	if err != nil || len(p) != MaxFrameSize {
		t.Fatalf("max frame: %d %v", len(p), err)
	}
	if _, err := ReadFrame(&stream, nil); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"too large":   {[]byte{0, 1, 0, 1}, ErrFrameTooLarge},
		"zero":        {[]byte{0, 0, 0, 0}, ErrFrameEmpty},
		"cut header":  {[]byte{0, 0}, io.ErrUnexpectedEOF},
		"cut payload": {[]byte{0, 0, 0, 5, 'h', 'i'}, io.ErrUnexpectedEOF},
	} {
		if _, err := ReadFrame(bytes.NewReader(c.in), nil); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v want %v", name, err, c.want)
		}
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Error("WriteFrame accepted an oversized payload")
	}
}

func TestMF1(t *testing.T) {
	h := MF1Header{TimestampMs: 1_764_000_000_000, Sequence: 99, SatelliteID: 12, StationID: 3, Flags: FlagEmergency | FlagCRCFailed}
	p := AppendMF1(nil, h, []byte("telemetry"))
	if len(p) != MF1HeaderSize+9 {
		t.Fatalf("len %d", len(p))
	}
	got, body, err := DecodeMF1(p)
	h.ByteCount = 9
	if err != nil || got != h || string(body) != "telemetry" {
		t.Fatalf("%+v %q %v", got, body, err)
	}
	if _, _, err := DecodeMF1(p[:23]); !errors.Is(err, ErrMF1Header) {
		t.Error("short header accepted")
	}
	if _, _, err := DecodeMF1(append(p, 0)); !errors.Is(err, ErrMF1Header) {
		t.Error("byte_count mismatch accepted")
	}
}

func TestHello(t *testing.T) {
	h, err := ParseHello([]byte("HELLO station=gs-svalbard format=mf1\r\n"))
	if err != nil || h.Station != "gs-svalbard" || h.Format != "mf1" {
		t.Fatalf("%+v %v", h, err)
	}
	h2, err := ParseHello([]byte(h.String() + " token=s3cret"))
	if err != nil || h2.Token != "s3cret" {
		t.Fatalf("%+v %v", h2, err)
	}
	for _, bad := range []string{"HELLO", "HELLO format=mf1", "HELLO station=a.b", "HELLO station=x format=xml",
		"HELLO station=x color=red", "HELLO station", "HELLO station=" + strings.Repeat("x", 65), "hello station=x"} {
		if _, err := ParseHello([]byte(bad)); !errors.Is(err, ErrHello) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	if !IsGoodbye([]byte("GOODBYE")) || !IsGoodbye([]byte("GOODBYE\n")) || IsGoodbye([]byte("GOODBYEX")) {
		t.Error("IsGoodbye")
	}
}

func TestDetection(t *testing.T) {
	d := Detection{SensorID: 77, Azimuth: 359.5, Elevation: -10, RangeKm: 1200, TimestampMs: 1_764_000_000_000}
	p := AppendDetection(nil, d)
	if len(p) != DetectionSize {
		t.Fatal(len(p))
	}
	got, err := DecodeDetection(p)
	if err != nil || got != d {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := DecodeDetection(p[:23]); !errors.Is(err, ErrDetection) {
		t.Error("short datagram accepted")
	}
	bad := AppendDetection(nil, Detection{Azimuth: 400})
	if _, err := DecodeDetection(bad); !errors.Is(err, ErrDetection) {
		t.Error("azimuth 400 accepted")
	}
}

func TestJSONConversion(t *testing.T) {
	mp, err := FromJSON("command", []byte(`{"id":"c-9","station_id":"gs-1","kind":"REPOINT","azimuth":180,"elevation":45,"issued_at_ns":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var c Command
	if err := Decode(mp, &c); err != nil || c.Kind != CmdRepoint || *c.Azimuth != 180 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := FromJSON("command", []byte(`{"id":"c","station_id":"gs-1","kind":"LAUNCH"}`)); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("invalid command accepted: %v", err)
	}
	if _, err := FromJSON("command", []byte(`{"id":"c","stationid":"gs-1"}`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown JSON field accepted: %v", err)
	}
	if _, err := FromJSON("nope", nil); err == nil {
		t.Fatal("unknown type accepted")
	}
	js, err := ToJSON(mustMarshal(t, sampleBatch()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	if !strings.Contains(s, `"station_id": "gs-svalbard"`) || !strings.Contains(s, `"base64"`) {
		t.Fatalf("ToJSON output:\n%s", s)
	}
	if _, err := ToJSON([]byte{0xc1}); !errors.Is(err, ErrMalformed) {
		t.Fatal("garbage rendered")
	}
}

func TestAppendRawFrameMatchesAppendFrame(t *testing.T) {
	tle := sampleTle()
	tleRaw, _ := Marshal(&tle)
	for _, f := range []Frame{sampleBatch().Frames[1], {StationID: strings.Repeat("s", 40), Tle: &tle, Payload: nil}} {
		raw := RawFrame{StationID: []byte(f.StationID), SourceID: []byte(f.SourceID), SourceKind: []byte(f.SourceKind),
			Priority: []byte(f.Priority), Sequence: f.Sequence, TimestampMs: f.TimestampMs, SatelliteID: f.SatelliteID,
			Flags: f.Flags, Payload: f.Payload}
		if f.Tle != nil {
			raw.Tle = tleRaw
		}
		if a, b := AppendFrame(nil, &f), AppendRawFrame(nil, &raw); string(a) != string(b) {
			t.Fatalf("encodings differ:\n%x\n%x", a, b)
		}
	}
}

// A few bytes claiming billions of elements must be refused before the
// decoder sizes a slice from the claim (found by fuzzing in CI: the
// process ran out of memory).
func TestHugeDeclaredLengthsRefused(t *testing.T) {
	inputs := [][]byte{
		{0x92, 0xa6, '0', '0', '0', '0', '0', '?', 0xdd, 0xa4, 0x02, 0x30, 0x9b, 0x9b},                                                           // the fuzzer's crasher
		append([]byte{0x82, 0xaa}, append([]byte("station_id"), 0xa1, 'x', 0xa6, 'f', 'r', 'a', 'm', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff)...), // frames: array32 of 4G
		{0xdf, 0x7f, 0xff, 0xff, 0xff},       // map32 of 2G pairs
		{0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}, // bin32 of 4 GB
	}
	for i, in := range inputs {
		for _, v := range []any{new(FrameBatch), new(Command), new(Tle), new(TleSnapshotRequest)} {
			if err := Unmarshal(in, v); !errors.Is(err, ErrMalformed) {
				t.Errorf("input %d into %T: %v", i, v, err)
			}
		}
		if _, err := ToJSON(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("input %d: ToJSON %v", i, err)
		}
	}
	deep := bytes.Repeat([]byte{0x91}, 40) // 40 nested arrays
	if err := Unmarshal(append(deep, 0x01), new(FrameBatch)); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting accepted: %v", err)
	}
}
