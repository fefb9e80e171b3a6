package lsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/store/wal"
)

func TestMain(m *testing.M) {
	if crashChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

var ctx = context.Background()

func key(i uint32) []byte { return binary.BigEndian.AppendUint32(nil, i) }

func value(i uint32, gen int) []byte {
	v := make([]byte, 82)
	binary.LittleEndian.PutUint32(v, i)
	binary.LittleEndian.PutUint64(v[8:], uint64(gen))
	return v
}

func mustOpen(t testing.TB, fs vfs.FS, o Options) *DB {
	t.Helper()
	o.FS = fs
	db, err := Open(ctx, "db", &o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}

func mustCheck(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestPutGetDeleteScan(t *testing.T) {
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{MemtableSize: 8 << 10, L0CompactionTrigger: 3, TargetFileSize: 16 << 10})
	for i := uint32(0); i < 2000; i++ {
		if err := db.Put(ctx, key(i), value(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint32(0); i < 2000; i += 3 {
		if err := db.Delete(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := db.Stats()
	if s.Flushes == 0 || s.TotalTables() == 0 {
		t.Fatalf("no tables flushed: %+v", s)
	}
	mustCheck(t, db)
	for i := uint32(0); i < 2001; i++ {
		v, err := db.Get(ctx, key(i))
		if i%3 == 0 || i == 2000 {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("key %d: got %x, %v; want ErrNotFound", i, v, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(v, value(i, 0)) {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	var got []uint32
	err := db.Scan(ctx, key(100), key(120), func(k, v []byte) error {
		got = append(got, binary.BigEndian.Uint32(k))
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[100 101 103 104 106 107 109 110 112 113 115 116 118 119]" {
		t.Fatalf("scan = %v, %v", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, fs, Options{})
	defer db.Close()
	mustCheck(t, db)
	if v, err := db.Get(ctx, key(1999)); err != nil || !bytes.Equal(v, value(1999, 0)) {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestSyncPolicyZeroIsAlways(t *testing.T) {
	var o Options
	if o.withDefaults().Sync != wal.SyncAlways {
		t.Fatal("zero Options must fsync every Apply")
	}
}
