package btree

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// The on-disk format (page header, meta page, leaf and internal nodes) is
// pinned by a golden file: a deterministic 3-leaf tree must encode to
// exactly these bytes. Run with -update after an intentional format change.
func TestGoldenFile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 16, Options{ValueSize: 8})
	for i := uint32(1); i <= 5000; i += 7 {
		v := []byte{byte(i), byte(i >> 8), 'O', 'O', 'R', 0, 0, byte(i % 251)}
		if err := e.tree.Put(ctx, i, v); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := e.tree.Delete(ctx, 8); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := e.tree.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tree-v8.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("on-disk format changed: first difference at byte %d (page %d offset %d); file %d bytes, golden %d",
					i, i/pagefile.PageSize, i%pagefile.PageSize, len(got), len(want))
			}
		}
		t.Fatalf("on-disk format changed: file %d bytes, golden %d", len(got), len(want))
	}
}

// faultFile fails writes or reads on demand, to check that I/O errors
// surface from the tree instead of being swallowed.
type faultFile struct {
	*os.File
	failWrites, failReads atomic.Bool
}

var errInjected = errors.New("injected I/O error")

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if f.failWrites.Load() {
		return 0, errInjected
	}
	return f.File.WriteAt(b, off)
}

func (f *faultFile) ReadAt(b []byte, off int64) (int, error) {
	if f.failReads.Load() {
		return 0, errInjected
	}
	return f.File.ReadAt(b, off)
}

func TestIOErrorsSurface(t *testing.T) {
	ctx := context.Background()
	osf, err := os.OpenFile(filepath.Join(t.TempDir(), "fault.oor"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ff := &faultFile{File: osf}
	pg, err := pagefile.Open(ff)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	tr, err := Open(ctx, bufpool.New(pg, bufpool.Config{Frames: 8}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(2000) {
		if err := tr.Put(ctx, i, tleValue(i)); err != nil {
			t.Fatal(err)
		}
	}
	ff.failWrites.Store(true)
	if err := tr.Flush(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("flush with failing writes: %v", err)
	}
	// Puts that need evictions fail; the ones acknowledged must survive
	// and the tree must stay consistent.
	var acked []uint32
	for i := range uint32(2000) {
		acked = append(acked, i)
	}
	failures := 0
	for i := uint32(2000); i < 4000; i++ {
		err := tr.Put(ctx, i, tleValue(i))
		if err == nil {
			acked = append(acked, i)
		} else {
			if !errors.Is(err, errInjected) {
				t.Fatalf("put %d: %v", i, err)
			}
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no put hit the failing file")
	}
	ff.failWrites.Store(false)
	mustCheck(t, tr)
	for _, i := range acked {
		if _, ok, err := tr.Get(ctx, i, nil); err != nil || !ok {
			t.Fatalf("acknowledged key %d lost after write faults: ok=%v err=%v", i, ok, err)
		}
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ff.failReads.Store(true)
	sawErr := false
	for i := uint32(0); i < 2000 && !sawErr; i += 50 {
		_, _, err := tr.Get(ctx, i, nil)
		sawErr = errors.Is(err, errInjected)
	}
	if !sawErr {
		t.Fatal("reads through an 8-frame pool never hit the failing file")
	}
	ff.failReads.Store(false)
	for i := range uint32(2000) {
		if v, ok, err := tr.Get(ctx, i, nil); err != nil || !ok || !bytes.Equal(v, tleValue(i)) {
			t.Fatalf("after faults cleared, key %d: ok=%v err=%v", i, ok, err)
		}
	}
}
