package mvcc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// clock is a settable commit clock: the next commit gets max(t, last+1).
type clock struct{ t atomic.Uint64 }

func (c *clock) now() uint64 { return c.t.Load() }

func open(t testing.TB, dir string, c *clock, mod func(*mvcc.Options)) *mvcc.DB {
	t.Helper()
	o := &mvcc.Options{LSM: lsm.Options{DisableAutoCompaction: true, Sync: wal.SyncNone}}
	if c != nil {
		o.Now = c.now
	}
	if mod != nil {
		mod(o)
	}
	db, err := mvcc.Open(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func put(t testing.TB, db *mvcc.DB, key, val string) uint64 {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Put([]byte(key), []byte(val))
	ts, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func del(t testing.TB, db *mvcc.DB, key string) uint64 {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Delete([]byte(key))
	ts, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func getAt(t testing.TB, db *mvcc.DB, key string, ts uint64) (string, bool) {
	t.Helper()
	s, err := db.Snapshot(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, _, err := s.Get(context.Background(), []byte(key))
	if errors.Is(err, mvcc.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v), true
}

// Criterion 1: newer versions sort before older ones, user-key order is
// kept, and the encoding round-trips (keys with zero bytes included).
func TestCourseKeyEncoding(t *testing.T) {
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, []byte("NORAD-25544"), []byte("NORAD-25544\x00"), []byte("NORAD-25545"), {0xFF}}
	tss := []uint64{1, 50, 80, 110, 1 << 40, 1<<64 - 2}
	var prev []byte
	for ki, k := range keys {
		for i := len(tss) - 1; i >= 0; i-- { // newest first must be ascending bytes
			enc := mvcc.AppendKey(nil, k, tss[i])
			if prev != nil && bytes.Compare(prev, enc) >= 0 {
				t.Fatalf("key %d %q ts %d does not sort after the previous encoding", ki, k, tss[i])
			}
			prev = enc
			got, ts, err := mvcc.DecodeKey(nil, enc)
			if err != nil || !bytes.Equal(got, k) || ts != tss[i] {
				t.Fatalf("decode %x = %q %d %v, want %q %d", enc, got, ts, err, k, tss[i])
			}
		}
	}
	if _, _, err := mvcc.DecodeKey(nil, []byte("dNORAD\x00\x02aaaaaaaa")); !errors.Is(err, mvcc.ErrBadKey) {
		t.Fatalf("bad escape: err = %v", err)
	}
}

// Criterion 2: versions at 50, 80, 110 read at 60, 90, 120.
func TestCourseSnapshotReads(t *testing.T) {
	c := &clock{}
	db := open(t, t.TempDir(), c, nil)
	defer db.Close()
	for _, ts := range []uint64{50, 80, 110} {
		c.t.Store(ts)
		if got := put(t, db, "NORAD-25544", fmt.Sprintf("v%d", ts)); got != ts {
			t.Fatalf("commit ts = %d, want %d", got, ts)
		}
	}
	for _, tc := range []struct {
		at   uint64
		want string
	}{{60, "v50"}, {90, "v80"}, {120, "v110"}, {50, "v50"}, {110, "v110"}} {
		if v, ok := getAt(t, db, "NORAD-25544", tc.at); !ok || v != tc.want {
			t.Errorf("read at %d = %q %v, want %q", tc.at, v, ok, tc.want)
		}
	}
	if _, ok := getAt(t, db, "NORAD-25544", 49); ok {
		t.Error("read at 49 found a version committed at 50")
	}
}

// Criterion 3: a delete hides older versions from later snapshots only.
func TestCourseTombstones(t *testing.T) {
	c := &clock{}
	db := open(t, t.TempDir(), c, nil)
	defer db.Close()
	c.t.Store(50)
	put(t, db, "NORAD-99999", "alive")
	c.t.Store(80)
	del(t, db, "NORAD-99999")
	if v, ok := getAt(t, db, "NORAD-99999", 60); !ok || v != "alive" {
		t.Errorf("read at 60 = %q %v, want alive", v, ok)
	}
	if _, ok := getAt(t, db, "NORAD-99999", 90); ok {
		t.Error("read at 90 found a deleted key")
	}
}

// Criterion 4: 10,000 reads at a fixed snapshot against 1,000 concurrent
// commits: every read returns the snapshot's pair, never a mix.
func TestCourseConcurrentReadsAndWrites(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir(), nil, nil)
	defer db.Close()
	tx, _ := db.Begin(ctx)
	tx.Put([]byte("a"), []byte("0"))
	tx.Put([]byte("b"), []byte("0"))
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := db.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()

	var wg sync.WaitGroup
	var werr error
	var writes atomic.Int64
	wg.Add(1)
	go func() { // writer: both keys move together in every commit
		defer wg.Done()
		for i := 1; i <= 1000; i++ {
			tx, err := db.Begin(ctx)
			if err != nil {
				werr = err
				return
			}
			v := []byte(fmt.Sprint(i))
			tx.Put([]byte("a"), v)
			tx.Put([]byte("b"), v)
			if _, err := tx.Commit(ctx); err != nil {
				werr = err
				return
			}
			writes.Add(1)
		}
	}()
	for i := 0; i < 10_000; i++ {
		k := []byte{"ab"[i%2]}
		v, _, err := snap.Get(ctx, k)
		if err != nil || string(v) != "0" {
			t.Fatalf("read %d of %s at the snapshot = %q, %v; want 0", i, k, v, err)
		}
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if writes.Load() != 1000 {
		t.Fatalf("writer committed %d", writes.Load())
	}
	// A new snapshot sees the last commit on both keys.
	for _, k := range []string{"a", "b"} {
		if v, ok := getAt(t, db, k, 0); !ok || v != "1000" {
			t.Fatalf("latest %s = %q", k, v)
		}
	}
}

// Criterion 5: first committer wins, the second gets ErrConflict.
func TestCourseWriteConflict(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir(), nil, nil)
	defer db.Close()
	put(t, db, "NORAD-25544", "base")
	t1, _ := db.Begin(ctx)
	t2, _ := db.Begin(ctx)
	t1.Put([]byte("NORAD-25544"), []byte("t1"))
	t2.Put([]byte("NORAD-25544"), []byte("t2"))
	if _, err := t1.Commit(ctx); err != nil {
		t.Fatalf("first committer: %v", err)
	}
	if _, err := t2.Commit(ctx); !errors.Is(err, mvcc.ErrConflict) {
		t.Fatalf("second committer: err = %v, want ErrConflict", err)
	}
	if v, _ := getAt(t, db, "NORAD-25544", 0); v != "t1" {
		t.Fatalf("value = %q, want t1", v)
	}
	// Disjoint keys do not conflict, and a retried transaction succeeds.
	t3, _ := db.Begin(ctx)
	t4, _ := db.Begin(ctx)
	t3.Put([]byte("x"), nil)
	t4.Put([]byte("y"), nil)
	if _, err := t3.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := t4.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if s := db.Stats(); s.Conflicts != 1 {
		t.Fatalf("conflicts = %d, want 1", s.Conflicts)
	}
}

func versionTSs(t *testing.T, db *mvcc.DB, key string) []uint64 {
	t.Helper()
	vs, err := db.Versions(context.Background(), []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, v := range vs {
		out = append(out, v.TS)
	}
	return out
}

// Criterion 6: watermark 100, versions 30/70/90/120: 30 collected.
func TestCourseGarbageCollection(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		retain int
		want   string
	}{{0, "[120 90 70]"}, {1, "[120 90]"}} {
		t.Run(fmt.Sprint("retain=", tc.retain), func(t *testing.T) {
			c := &clock{}
			db := open(t, t.TempDir(), c, func(o *mvcc.Options) { o.RetainBelowWatermark = tc.retain })
			defer db.Close()
			for _, ts := range []uint64{30, 70, 90, 120} {
				c.t.Store(ts)
				put(t, db, "NORAD-25544", fmt.Sprint("v", ts))
			}
			put(t, db, "other", "x")           // ts 121
			snap, err := db.Snapshot(ctx, 100) // the oldest reader: watermark 100
			if err != nil {
				t.Fatal(err)
			}
			if wm := db.Watermark(); wm != 100 {
				t.Fatalf("watermark = %d, want 100", wm)
			}
			if err := db.LSM().Compact(ctx); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(versionTSs(t, db, "NORAD-25544")); got != tc.want {
				t.Fatalf("versions after GC = %s, want %s", got, tc.want)
			}
			if v, _, err := snap.Get(ctx, []byte("NORAD-25544")); err != nil || string(v) != "v90" {
				t.Fatalf("reader at 100 after GC = %q, %v", v, err)
			}
			snap.Close()
			if _, err := db.Snapshot(ctx, 50); !errors.Is(err, mvcc.ErrSnapshotTooOld) {
				t.Fatalf("snapshot below the horizon: err = %v", err)
			}
			if err := db.LSM().Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A key deleted below the watermark disappears entirely at the bottom level;
// the delete of a key still visible to a reader is kept.
func TestGarbageCollectionOfDeletes(t *testing.T) {
	ctx := context.Background()
	c := &clock{}
	db := open(t, t.TempDir(), c, nil)
	defer db.Close()
	c.t.Store(10)
	put(t, db, "gone", "a")
	put(t, db, "kept", "a")
	c.t.Store(20)
	del(t, db, "gone")
	c.t.Store(40)
	del(t, db, "kept")
	snap, _ := db.Snapshot(ctx, 30)
	if err := db.LSM().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if vs := versionTSs(t, db, "gone"); len(vs) != 0 {
		t.Fatalf("deleted key still has versions %v", vs)
	}
	if got := fmt.Sprint(versionTSs(t, db, "kept")); got != "[40 11]" {
		t.Fatalf("kept versions = %s", got)
	}
	if v, _, err := snap.Get(ctx, []byte("kept")); err != nil || string(v) != "a" {
		t.Fatalf("reader at 30 = %q %v", v, err)
	}
	snap.Close()
}

// Commits survive a reopen, timestamps keep increasing past a clock that
// went backwards, and iterators see one version per key.
func TestReopenAndIterate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := &clock{}
	c.t.Store(1000)
	db := open(t, dir, c, nil)
	for i := 0; i < 50; i++ {
		put(t, db, fmt.Sprintf("k%03d", i), "old")
	}
	for i := 0; i < 50; i += 2 {
		put(t, db, fmt.Sprintf("k%03d", i), "new")
	}
	del(t, db, "k049")
	last := db.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c.t.Store(5) // the clock went backwards
	db = open(t, dir, c, nil)
	defer db.Close()
	if db.Now() != last {
		t.Fatalf("recovered Now = %d, want %d", db.Now(), last)
	}
	if ts := put(t, db, "k000", "newer"); ts != last+1 {
		t.Fatalf("commit after reopen at %d, want %d", ts, last+1)
	}
	snap, _ := db.Snapshot(ctx, last)
	defer snap.Close()
	it, err := snap.NewIter(ctx, []byte("k010"), []byte("k049"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next() {
		want := "old"
		if (n+10)%2 == 0 {
			want = "new"
		}
		if k := fmt.Sprintf("k%03d", n+10); string(it.Key()) != k || string(it.Value()) != want {
			t.Fatalf("row %d = %s=%s, want %s=%s", n, it.Key(), it.Value(), k, want)
		}
		n++
	}
	if it.Err() != nil || n != 39 {
		t.Fatalf("iterated %d rows, err %v", n, it.Err())
	}
	it.Close()
}
