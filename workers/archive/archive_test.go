package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions()...)
}

func frames(src string, sat uint32, from, n uint64) []schemas.Frame {
	out := make([]schemas.Frame, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, schemas.Frame{StationID: src, SourceID: src, SourceKind: schemas.KindLiveUplink, Priority: schemas.PriorityRoutine,
			Sequence: i, TimestampMs: 1000 + i, SatelliteID: sat, Payload: []byte{byte(i)}})
	}
	return out
}

func TestAppendQueryReopen(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.Append(frames("gs-a", 1, 1, 50)); err != nil || n != 50 {
		t.Fatalf("append %d %v", n, err)
	}
	if n, _ := a.Append(frames("gs-b", 2, 1, 20)); n != 20 {
		t.Fatal(n)
	}
	if n, _ := a.Append(frames("gs-a", 1, 40, 20)); n != 9 { // 40..49 archived already (a redelivery overlap)
		t.Fatalf("overlapping batch added %d, want 9", n)
	}
	got, err := a.Query("gs-a", 1010, 1020)
	if err != nil || len(got) != 11 || got[0].Sequence != 10 || got[10].Sequence != 20 || string(got[3].Payload) != string([]byte{13}) {
		t.Fatalf("query: %d frames %v", len(got), err)
	}
	a.Close()

	b, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Count() != 79 || len(b.Sources()) != 2 {
		t.Fatalf("reopened: %d frames, sources %v", b.Count(), b.Sources())
	}
	if n, _ := b.Append(frames("gs-b", 2, 1, 20)); n != 0 {
		t.Fatalf("a redelivered batch after reopen added %d", n)
	}
}

// A crash mid-append leaves a partial record: reopening cuts it and keeps
// every complete record; a flipped byte ends the readable part too.
func TestTornAndCorruptTailsCut(t *testing.T) {
	for name, damage := range map[string]func(path string, size int64){
		"torn":    func(p string, size int64) { _ = os.Truncate(p, size-7) },
		"corrupt": func(p string, size int64) { flipByte(t, p, size-3) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := Open(dir, false)
			_, _ = a.Append(frames("gs-a", 1, 1, 10))
			a.Close()
			seg := filepath.Join(dir, "seg-00000000.log")
			st, _ := os.Stat(seg)
			damage(seg, st.Size())
			b, err := Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Count() != 9 {
				t.Fatalf("after a damaged tail %d frames readable, want 9", b.Count())
			}
			if n, err := b.Append(frames("gs-a", 1, 10, 1)); n != 1 || err != nil { // the lost frame comes back on redelivery
				t.Fatalf("re-append %d %v", n, err)
			}
			if got, _ := b.Query("gs-a", 0, 1<<62); len(got) != 10 {
				t.Fatalf("query after repair: %d", len(got))
			}
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	_, _ = f.ReadAt(b, off)
	b[0] ^= 0xff
	_, _ = f.WriteAt(b, off)
}

func TestReadOnlyNeverWrites(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir, false)
	_, _ = a.Append(frames("gs-a", 1, 1, 3))
	a.Close()
	r, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Append(frames("gs-a", 1, 9, 1)); !errors.Is(err, ErrReadOnly) {
		t.Fatal(err)
	}
	if r.Count() != 3 {
		t.Fatal(r.Count())
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, 2, 3, []byte("gs"), []byte{0x80}))
	f.Add([]byte{0, 0, 0, 30, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := appendRecord(nil, r.ts, r.sat, r.seq, r.source, r.frame)
		if string(again) != string(b[:r.size]) {
			t.Fatal("record does not round-trip")
		}
	})
}

// The worker archives every processed frame exactly once, even when a
// batch is delivered twice.
func TestWorkerArchivesProcessedFramesOnce(t *testing.T) {
	b := bustest.New(t)
	w, err := NewWorker(b.Conn, Config{Dir: t.TempDir(), Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	js, _ := jetstream.New(b.Conn)
	batch := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-a", Frames: frames("gs-a", 1, 1, 100)})
	for range 2 { // the second is a redelivery with another message id
		if _, err := js.Publish(ctx, "tlm.processed.gs-a", batch); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = js.Publish(ctx, "tlm.processed.gs-a", []byte("junk"))
	bustest.Eventually(t, 10*time.Second, func() bool {
		return w.Archive().Count() == 100 && bus.MalformedCount("archive") >= 1 && bus.HandledCount("archive", "ack") >= 2
	}, "archive holds %d frames, want 100", w.Archive().Count())
	// What the worker archived (the frames' bytes as they came) reads back
	// as the frames that were published.
	want := frames("gs-a", 1, 1, 100)
	got, err := w.Archive().Query("gs-a", 0, ^uint64(0))
	if err != nil || len(got) != len(want) {
		t.Fatalf("query: %d frames, %v", len(got), err)
	}
	for i := range got {
		if !bytes.Equal(schemas.AppendFrame(nil, &got[i]), schemas.AppendFrame(nil, &want[i])) {
			t.Fatalf("frame %d archived as %+v, published %+v", i, got[i], want[i])
		}
	}
}

// Across many segments, range queries through the sparse index return
// exactly the matching frames in timestamp order, before and after a
// reopen, and the index holds one span per source per segment.
func TestSparseIndexQueriesAcrossSegments(t *testing.T) {
	defer func(old int64) { segmentMax = old }(segmentMax)
	segmentMax = 4096
	dir := t.TempDir()
	a, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := 0; i < n; i += 10 {
		var batch []schemas.Frame
		for j := i; j < i+10; j++ {
			src := []string{"gs-a", "gs-b", "gs-c"}[j%3]
			batch = append(batch, schemas.Frame{StationID: src, SourceID: src, SatelliteID: 7, Sequence: uint64(j + 1),
				TimestampMs: uint64(1_000_000 + j), Payload: []byte("x")})
		}
		if _, err := a.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	check := func(a *Archive) {
		t.Helper()
		if len(a.spans) < 20 {
			t.Fatalf("only %d segments; the test wants many", len(a.spans))
		}
		for seg, m := range a.spans {
			if len(m) > 3 {
				t.Fatalf("segment %d indexes %d sources", seg, len(m))
			}
		}
		got, err := a.Query("gs-b", 1_001_000, 1_001_299)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 100 {
			t.Fatalf("query returned %d frames, want 100", len(got))
		}
		for i, f := range got {
			if want := uint64(1_001_000 + 3*i); f.TimestampMs != want || f.SourceID != "gs-b" {
				t.Fatalf("frame %d: %s at %d, want gs-b at %d", i, f.SourceID, f.TimestampMs, want)
			}
		}
		if all, _ := a.Query("gs-c", 0, ^uint64(0)); len(all) != n/3 {
			t.Fatalf("all of gs-c: %d frames", len(all))
		}
		if a.Count() != n || fmt.Sprint(a.Sources()) != "[gs-a gs-b gs-c]" {
			t.Fatalf("count %d, sources %v", a.Count(), a.Sources())
		}
	}
	check(a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	check(ro)
}
