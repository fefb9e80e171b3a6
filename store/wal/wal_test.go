package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/store/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

func payload(i uint64) []byte {
	return []byte(fmt.Sprintf("record-%06d-%s", i, bytes.Repeat([]byte{'x'}, int(i%13))))
}

func replayAll(t *testing.T, fs vfs.FS, dir string, after uint64) ([]uint64, ReplayResult) {
	t.Helper()
	var lsns []uint64
	res, err := Replay(ctx, fs, dir, after, func(lsn uint64, p []byte) error {
		if !bytes.Equal(p, payload(lsn)) {
			t.Fatalf("lsn %d payload %q", lsn, p)
		}
		lsns = append(lsns, lsn)
		return nil
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return lsns, res
}

func TestAppendReplayRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	w, err := Open(ctx, Options{FS: fs, Dir: "w", SegmentSize: 300}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 100; i++ {
		lsn, err := w.Append(payload(i))
		if err != nil || lsn != i {
			t.Fatalf("append %d: lsn %d err %v", i, lsn, err)
		}
	}
	if err := w.Sync(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if len(w.Segments()) < 5 {
		t.Fatalf("expected rotation by size, segments %v", w.Segments())
	}
	fs.Crash() // everything was synced (rotation syncs, then Sync)
	lsns, res := replayAll(t, fs, "w", 0)
	if len(lsns) != 100 || res.LastLSN != 100 || res.TornBytes != 0 {
		t.Fatalf("replayed %d, last %d, torn %d", len(lsns), res.LastLSN, res.TornBytes)
	}
	// Replay above a flushed LSN delivers only newer records.
	lsns, _ = replayAll(t, fs, "w", 60)
	if len(lsns) != 40 || lsns[0] != 61 {
		t.Fatalf("after 60: got %d records from %v", len(lsns), lsns[:1])
	}
	w.Close()
}

// TestTornTailEveryOffset cuts the last record at every byte offset and
// flips every byte of it: replay must stop at the previous record, never
// apply garbage and never fail.
func TestTornTailEveryOffset(t *testing.T) {
	var seg []byte
	for i := uint64(1); i <= 5; i++ {
		seg = AppendRecord(seg, i, payload(i))
	}
	lastStart := len(AppendRecord(nil, 1, payload(1))) + len(AppendRecord(nil, 2, payload(2))) +
		len(AppendRecord(nil, 3, payload(3))) + len(AppendRecord(nil, 4, payload(4)))
	check := func(name string, data []byte) {
		fs := vfs.NewMem()
		vfs.WriteFile(fs, segmentName("w", 1), data)
		lsns, res := replayAll(t, fs, "w", 0)
		if len(lsns) != 4 || res.LastLSN != 4 {
			t.Fatalf("%s: replayed %v", name, lsns)
		}
		if res.TornBytes != int64(len(data)-lastStart) {
			t.Fatalf("%s: torn %d want %d", name, res.TornBytes, len(data)-lastStart)
		}
		// The writer continues at LSN 5 in a new segment; a second replay
		// sees both segments as one consistent log.
		w, err := Open(ctx, Options{FS: fs, Dir: "w"}, res.LastLSN+1)
		if err != nil {
			t.Fatal(err)
		}
		w.Append(payload(5))
		w.Close()
		lsns, _ = replayAll(t, fs, "w", 0)
		if len(lsns) != 5 {
			t.Fatalf("%s: after rewrite replayed %v", name, lsns)
		}
	}
	for cut := lastStart; cut < len(seg); cut++ {
		check(fmt.Sprintf("cut at %d", cut), seg[:cut])
	}
	for off := lastStart; off < len(seg); off++ {
		for _, bit := range []byte{0x01, 0x80} {
			data := bytes.Clone(seg)
			data[off] ^= bit
			check(fmt.Sprintf("flip %#x at %d", bit, off), data)
		}
	}
}

func TestGapBetweenSegmentsIsCorrupt(t *testing.T) {
	fs := vfs.NewMem()
	var a, b []byte
	a = AppendRecord(a, 1, payload(1))
	a = AppendRecord(a, 2, payload(2))
	b = AppendRecord(b, 4, payload(4))
	vfs.WriteFile(fs, segmentName("w", 1), a)
	vfs.WriteFile(fs, segmentName("w", 4), b)
	_, err := Replay(ctx, fs, "w", 0, func(uint64, []byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	// A log whose first segment starts above flushed+1 has lost records.
	fs2 := vfs.NewMem()
	vfs.WriteFile(fs2, segmentName("w", 4), b)
	if _, err = Replay(ctx, fs2, "w", 1, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestTruncateKeepsRecordsAboveFlushed(t *testing.T) {
	fs := vfs.NewMem()
	w, _ := Open(ctx, Options{FS: fs, Dir: "w"}, 1)
	for i := uint64(1); i <= 30; i++ {
		w.Append(payload(i))
		if i%10 == 0 {
			w.Rotate()
		}
	}
	// segments start at 1, 11, 21, 31
	if got := w.Segments(); fmt.Sprint(got) != "[1 11 21 31]" {
		t.Fatalf("segments %v", got)
	}
	n, err := w.Truncate(20)
	if err != nil || n != 2 {
		t.Fatalf("truncate removed %d, %v", n, err)
	}
	names, _ := fs.List("w")
	if len(names) != 2 {
		t.Fatalf("files after truncate: %v", names)
	}
	w.Close()
	lsns, _ := replayAll(t, fs, "w", 20)
	if len(lsns) != 10 || lsns[0] != 21 {
		t.Fatalf("replayed %v", lsns)
	}
	// Truncating at an LSN inside a segment keeps that segment.
	w, _ = Open(ctx, Options{FS: fs, Dir: "w"}, 31)
	if n, _ := w.Truncate(25); n != 0 {
		t.Fatalf("removed %d segments holding unflushed records", n)
	}
	w.Close()
}

// TestSyncPolicies crashes the strict in-memory FS after each policy's
// acknowledgement and checks what its loss window promises.
func TestSyncPolicies(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			fs := vfs.NewMem()
			w, err := Open(ctx, Options{FS: fs, Dir: "w", Sync: p, BufferSize: 64}, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= 50; i++ {
				lsn, _ := w.Append(payload(i))
				if err := w.Sync(ctx, lsn); err != nil {
					t.Fatal(err)
				}
			}
			fs.Crash()
			lsns, _ := replayAll(t, fs, "w", 0)
			switch p {
			case SyncAlways, SyncInterval:
				if len(lsns) != 50 {
					t.Fatalf("acknowledged 50, recovered %d", len(lsns))
				}
			case SyncNone:
				if len(lsns) != 0 {
					t.Fatalf("nothing was fsynced, recovered %d", len(lsns))
				}
			}
			w.Close()
		})
	}
}

func TestGroupCommitSharesFsyncs(t *testing.T) {
	fs := vfs.NewMem()
	w, _ := Open(ctx, Options{FS: fs, Dir: "w"}, 1)
	defer w.Close()
	const writers, each = 8, 50
	errc := make(chan error, writers)
	for g := 0; g < writers; g++ {
		go func() {
			for i := 0; i < each; i++ {
				lsn, err := w.Append([]byte("x"))
				if err == nil {
					err = w.Sync(ctx, lsn)
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < writers; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if s := w.Stats().Syncs; s > writers*each {
		t.Fatalf("%d fsyncs for %d records", s, writers*each)
	}
	if w.SyncedLSN() != writers*each {
		t.Fatalf("synced %d", w.SyncedLSN())
	}
}

// TestFaultsSurfaceAndPoison: a failed fsync or write is returned to the
// caller, poisons the writer, and what was acknowledged before survives.
func TestFaultsSurfaceAndPoison(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpSync, vfs.OpWrite} {
		t.Run(op.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			ff := vfs.NewFaulty(mem, nil)
			ff.ShortWrites = true
			w, _ := Open(ctx, Options{FS: ff, Dir: "w", BufferSize: 1}, 1)
			for i := uint64(1); i <= 10; i++ {
				lsn, _ := w.Append(payload(i))
				if err := w.Sync(ctx, lsn); err != nil {
					t.Fatal(err)
				}
			}
			ff.SetInjector(func(o vfs.Op, _ string) error {
				if o == op {
					return vfs.ErrInjected
				}
				return nil
			})
			lsn, err := w.Append(payload(11))
			if err == nil {
				err = w.Sync(ctx, lsn)
			}
			if !errors.Is(err, vfs.ErrInjected) || !errors.Is(err, ErrClosed) {
				t.Fatalf("err = %v", err)
			}
			ff.SetInjector(nil)
			if _, err := w.Append(payload(12)); !errors.Is(err, ErrClosed) {
				t.Fatalf("poisoned writer accepted an append: %v", err)
			}
			w.Close()
			mem.Crash()
			lsns, _ := replayAll(t, mem, "w", 0)
			if len(lsns) < 10 || len(lsns) > 11 {
				t.Fatalf("recovered %d records, acknowledged 10", len(lsns))
			}
		})
	}
}

func TestOSFileSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := Open(ctx, Options{Dir: dir, Sync: SyncInterval}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20; i++ {
		lsn, _ := w.Append(payload(i))
		if err := w.Sync(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	lsns, _ := replayAll(t, vfs.Default, dir, 0)
	if len(lsns) != 20 {
		t.Fatalf("replayed %d", len(lsns))
	}
}

func FuzzReadRecords(f *testing.F) {
	var seg []byte
	for i := uint64(1); i <= 3; i++ {
		seg = AppendRecord(seg, i, payload(i))
	}
	f.Add(seg, uint64(1))
	f.Add(seg[:len(seg)-3], uint64(1))
	f.Add([]byte{}, uint64(0))
	f.Add(make([]byte, 40), uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, first uint64) {
		prev := first - 1
		good, last, _, err := ReadRecords(data, first, func(lsn uint64, p []byte) error {
			if first != 0 && lsn != prev+1 {
				t.Fatalf("non-consecutive lsn %d after %d", lsn, prev)
			}
			prev = lsn
			return nil
		})
		if err != nil || good > len(data) {
			t.Fatalf("good %d of %d, err %v", good, len(data), err)
		}
		// The good prefix must re-encode to exactly itself.
		var re []byte
		ReadRecords(data[:good], first, func(lsn uint64, p []byte) error {
			re = AppendRecord(re, lsn, p)
			return nil
		})
		if !bytes.Equal(re, data[:good]) {
			t.Fatalf("good prefix does not round-trip")
		}
		_ = last
	})
}

// TestRotateEmptySegmentKeepsLiveFile: rotating with nothing written since
// the last rotation (or since Open) must not create a same-named segment
// that a later Truncate would delete as "older".
func TestRotateEmptySegmentKeepsLiveFile(t *testing.T) {
	fs := vfs.NewMem()
	w, _ := Open(ctx, Options{FS: fs, Dir: "w"}, 1)
	w.Append(payload(1))
	w.Rotate()
	w.Rotate() // nothing appended since the previous rotation
	w.Truncate(1)
	w.Append(payload(2))
	w.Close()
	lsns, _ := replayAll(t, fs, "w", 1)
	if len(lsns) != 1 || lsns[0] != 2 {
		t.Fatalf("replayed %v, want [2]", lsns)
	}
}
