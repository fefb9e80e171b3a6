package lsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-ops/meridian/store/sstable"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/store/wal"
)

func tleValue(id uint32, r *rand.Rand) []byte {
	rec := tle.Record{NoradID: id, Epoch: 24001.5 + r.Float64(), MeanMotion: 15.5, Eccentricity: r.Float64() / 10,
		Inclination: 51.6, ElementSet: 999, RevNumber: id}
	rec.SetDesignator("98067A")
	b, _ := rec.MarshalBinary()
	return b
}

// countTombstones reads every table of the current version raw.
func countTombstones(t *testing.T, db *DB) int {
	t.Helper()
	rs, err := db.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.ver.unref()
	n := 0
	for _, lvl := range rs.ver.levels {
		for _, tb := range lvl {
			it := tb.r.NewIter()
			for ok := it.First(); ok; ok = it.Next() {
				if _, _, kind := it.Entry(); kind == sstable.KindDelete {
					n++
				}
			}
		}
	}
	return n
}

// TestCourseLSMCriteria is the "LSM-Backed TLE Storage Engine" capstone's
// criteria 1-7, scaled to 20,000 records with a 256 KiB memtable so it is
// fast under -race (the demo runs the full 100,000 with 4 MiB).
func TestCourseLSMCriteria(t *testing.T) {
	const n = 20000
	r := rand.New(rand.NewPCG(42, 42))
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{MemtableSize: 256 << 10, DisableAutoCompaction: true, Sync: wal.SyncNone})
	defer db.Close()
	ids := r.Perm(100000)[:n] // random distinct NORAD ids in [0, 100000), random order
	present := map[uint32][]byte{}
	// 1. write throughput path: batches of 1,000 random-order TLE records.
	var b Batch
	for i, id := range ids {
		v := tleValue(uint32(id), r)
		b.Put(key(uint32(id)), v)
		present[uint32(id)] = v
		if (i+1)%1000 == 0 {
			if _, err := db.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// 2. memtable flush created SSTables on disk.
	s := db.Stats()
	names, _ := fs.List("db")
	ssts := 0
	for _, nm := range names {
		if strings.HasSuffix(nm, ".sst") {
			ssts++
		}
	}
	if s.Tables[0] < 4 || ssts != s.TotalTables() {
		t.Fatalf("after %d inserts: L0 tables %d, files %d", n, s.Tables[0], ssts)
	}
	mustCheck(t, db)
	// 3. point lookups: 1,000 present, 1,000 absent.
	for _, id := range ids[:1000] {
		v, err := db.Get(ctx, key(uint32(id)))
		if err != nil || !bytes.Equal(v, present[uint32(id)]) {
			t.Fatalf("get %d: %v", id, err)
		}
		var rec tle.Record
		if rec.UnmarshalBinary(v) != nil || rec.NoradID != uint32(id) {
			t.Fatalf("get %d: bad record", id)
		}
	}
	before := db.Stats()
	absent := 0
	for id := uint32(0); absent < 1000; id++ {
		if _, ok := present[id]; ok {
			continue
		}
		absent++
		if _, err := db.Get(ctx, key(id)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("absent %d: %v", id, err)
		}
	}
	// 4. bloom filters skip > 95% of the table probes of absent keys.
	after := db.Stats()
	probes, skips := after.TableProbes-before.TableProbes, after.BloomSkips-before.BloomSkips
	if probes < 1000 || float64(skips)/float64(probes) <= 0.95 {
		t.Fatalf("bloom skipped %d of %d probes", skips, probes)
	}
	// 5. delete 1,000; neighbours survive.
	sorted := make([]uint32, 0, n)
	for id := range present {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	deleted := map[uint32]bool{}
	for i := 1; i < len(sorted)-1 && len(deleted) < 1000; i += 7 {
		id := sorted[i]
		if err := db.Delete(ctx, key(id)); err != nil {
			t.Fatal(err)
		}
		deleted[id] = true
	}
	db.Flush(ctx)
	for i := 1; i < len(sorted)-1; i += 7 {
		id := sorted[i]
		if !deleted[id] {
			break
		}
		if _, err := db.Get(ctx, key(id)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted %d still readable: %v", id, err)
		}
		for _, nb := range []uint32{sorted[i-1], sorted[i+1]} {
			if v, err := db.Get(ctx, key(nb)); err != nil || !bytes.Equal(v, present[nb]) {
				t.Fatalf("neighbour %d of deleted %d: %v", nb, id, err)
			}
		}
	}
	// 6. compaction: fewer tables, everything readable, tombstones gone at the bottom.
	tablesBefore := db.Stats().TotalTables()
	if countTombstones(t, db) < 1000 {
		t.Fatal("tombstones were not flushed to L0")
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	s = db.Stats()
	if s.TotalTables() >= tablesBefore || s.Tables[0] != 0 || s.Tables[1] == 0 {
		t.Fatalf("tables %d -> %v", tablesBefore, s.Tables)
	}
	if got := countTombstones(t, db); got != 0 || s.TombstonesDropped < 1000 {
		t.Fatalf("tombstones left after bottommost compaction: %d (dropped %d)", got, s.TombstonesDropped)
	}
	mustCheck(t, db)
	for id, v := range present {
		got, err := db.Get(ctx, key(id))
		if deleted[id] {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted %d resurrected", id)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("after compaction get %d: %v", id, err)
		}
	}
	// 7. range scan [40000, 40500], sorted and exact.
	var want, got []uint32
	for _, id := range sorted {
		if id >= 40000 && id <= 40500 && !deleted[id] {
			want = append(want, id)
		}
	}
	err := db.Scan(ctx, key(40000), key(40501), func(k, v []byte) error {
		got = append(got, binary.BigEndian.Uint32(k))
		return nil
	})
	if err != nil || !slices.Equal(got, want) || len(want) == 0 {
		t.Fatalf("scan: %d keys, want %d (%v)", len(got), len(want), err)
	}
}

func walRecords(t *testing.T, fs vfs.FS, dir string) (n int, minLSN uint64) {
	t.Helper()
	names, _ := fs.List(dir)
	for _, nm := range names {
		data, err := vfs.ReadAll(fs, filepath.Join(dir, nm))
		if err != nil {
			t.Fatal(err)
		}
		wal.ReadRecords(data, 0, func(lsn uint64, p []byte) error {
			if _, err := decodeBatch(p, nil); err != nil {
				t.Fatalf("WAL record %d: %v", lsn, err)
			}
			if minLSN == 0 || lsn < minLSN {
				minLSN = lsn
			}
			n++
			return nil
		})
	}
	return n, minLSN
}

// TestCourseWALCriteria is the "Durable TLE Update Pipeline" capstone's
// criteria 1-7 (recovery timing is measured in the demo and benchmarks).
func TestCourseWALCriteria(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	t.Run("1 WAL write path", func(t *testing.T) {
		fs := vfs.NewMem()
		db := mustOpen(t, fs, Options{})
		for i := uint32(0); i < 1000; i++ {
			db.Put(ctx, key(i), tleValue(i, r))
		}
		if n, _ := walRecords(t, fs, "db/wal"); n != 1000 {
			t.Fatalf("WAL holds %d checksummed records after 1,000 puts", n)
		}
		db.Close()
	})
	t.Run("2 clean recovery", func(t *testing.T) {
		fs := vfs.NewMem()
		db := mustOpen(t, fs, Options{MemtableSize: 128 << 10})
		for i := uint32(0); i < 5000; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		db.Close()
		db = mustOpen(t, fs, Options{})
		defer db.Close()
		for i := uint32(0); i < 5000; i++ {
			if v, err := db.Get(ctx, key(i)); err != nil || !bytes.Equal(v, value(i, 1)) {
				t.Fatalf("key %d lost in clean shutdown: %v", i, err)
			}
		}
	})
	t.Run("3 crash recovery", func(t *testing.T) {
		fs := vfs.NewMem()
		db := mustOpen(t, fs, Options{Sync: wal.SyncNone})
		synced := 0
		for i := uint32(0); i < 5000; i++ {
			db.Put(ctx, key(i), value(i, 1))
			if (i+1)%300 == 0 {
				if err := db.SyncWAL(ctx); err != nil {
					t.Fatal(err)
				}
				synced = int(i + 1)
			}
		}
		crash(db, fs)
		db = mustOpen(t, fs, Options{})
		defer db.Close()
		recovered := 0
		db.Scan(ctx, nil, nil, func(k, v []byte) error { recovered++; return nil })
		t.Logf("recovered %d of 5000 written; %d were fsynced", recovered, synced)
		if recovered != synced {
			t.Fatalf("recovered %d, expected the %d fsynced records", recovered, synced)
		}
	})
	t.Run("4 crash during flush", func(t *testing.T) {
		mem := vfs.NewMem()
		ff := vfs.NewFaulty(mem, nil)
		db := mustOpen(t, ff, Options{})
		for i := uint32(0); i < 3000; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		// The table is written and synced; the manifest edit fails.
		ff.SetInjector(func(op vfs.Op, name string) error {
			if op == vfs.OpWrite && strings.Contains(name, "MANIFEST") {
				return vfs.ErrInjected
			}
			return nil
		})
		if err := db.Flush(ctx); !errors.Is(err, vfs.ErrInjected) || !errors.Is(err, ErrBackground) {
			t.Fatalf("flush err = %v", err)
		}
		if err := db.Put(ctx, key(1), nil); !errors.Is(err, ErrBackground) {
			t.Fatalf("writes after a failed flush must fail: %v", err)
		}
		crash(db, mem)
		ff.SetInjector(nil)
		db = mustOpen(t, ff, Options{})
		defer db.Close()
		if rec := db.Recovery(); rec.OrphansRemoved != 1 || rec.WALRecords != 3000 {
			t.Fatalf("recovery %+v: want 1 orphan removed and 3000 records replayed", rec)
		}
		for i := uint32(0); i < 3000; i++ {
			if v, err := db.Get(ctx, key(i)); err != nil || !bytes.Equal(v, value(i, 1)) {
				t.Fatalf("key %d: %v", i, err)
			}
		}
		mustCheck(t, db)
	})
	t.Run("5 WAL truncation", func(t *testing.T) {
		fs := vfs.NewMem()
		db := mustOpen(t, fs, Options{MemtableSize: 64 << 10})
		for i := uint32(0); i < 4000; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		db.Close()
		db = mustOpen(t, fs, Options{MemtableSize: 64 << 10})
		defer db.Close()
		for i := uint32(4000); i < 4100; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		if err := db.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		for i := uint32(4100); i < 4150; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		flushed := db.Stats().FlushedLSN
		n, minLSN := walRecords(t, fs, "db/wal")
		segs, _ := fs.List("db/wal")
		if len(segs) != 1 || n != 50 || minLSN != flushed+1 {
			t.Fatalf("after checkpoint: segments %v, %d records from LSN %d; flushed LSN %d", segs, n, minLSN, flushed)
		}
	})
	t.Run("6 recovery replays the whole WAL", func(t *testing.T) {
		fs := vfs.NewMem()
		o := Options{MemtableSize: 64 << 20, Sync: wal.SyncNone}
		db := mustOpen(t, fs, o)
		for i := uint32(0); i < 10000; i++ {
			db.Put(ctx, key(i), value(i, 1))
		}
		db.Close()
		db = mustOpen(t, fs, o)
		defer db.Close()
		if rec := db.Recovery(); rec.WALRecords != 10000 || rec.LastLSN != 10000 || rec.TablesOpened != 0 {
			t.Fatalf("recovery %+v", rec)
		}
	})
	t.Run("7 manifest correctness", func(t *testing.T) {
		fs := vfs.NewMem()
		o := Options{MemtableSize: 16 << 10, L0CompactionTrigger: 3, TargetFileSize: 16 << 10, LevelBaseSize: 64 << 10}
		db := mustOpen(t, fs, o)
		for cycle := 0; cycle < 6; cycle++ {
			for i := 0; i < 1500; i++ {
				id := uint32(r.IntN(6000))
				db.Put(ctx, key(id), value(id, cycle))
			}
			db.Flush(ctx)
			if cycle%2 == 1 {
				db.Compact(ctx)
			}
			if cycle%3 == 2 {
				db.Checkpoint(ctx)
			}
		}
		if db.Stats().Compactions == 0 || db.Stats().ManifestRew < 2 {
			t.Fatalf("cycles did not compact/checkpoint: %+v", db.Stats())
		}
		// Reopen without automatic compaction so the table set holds still.
		db.Close()
		o.DisableAutoCompaction = true
		db = mustOpen(t, fs, o)
		want, wantLSN := db.TableFiles(), db.Stats().FlushedLSN
		var content []string
		db.Scan(ctx, nil, nil, func(k, v []byte) error { content = append(content, fmt.Sprintf("%x", v)); return nil })
		db.Close()
		db = mustOpen(t, fs, o)
		defer db.Close()
		if got := db.TableFiles(); fmt.Sprint(got) != fmt.Sprint(want) || db.Stats().FlushedLSN != wantLSN {
			t.Fatalf("manifest after reopen: %v lsn %d, want %v lsn %d", got, db.Stats().FlushedLSN, want, wantLSN)
		}
		mustCheck(t, db) // includes: no table file on disk that the manifest does not list
		var again []string
		db.Scan(ctx, nil, nil, func(k, v []byte) error { again = append(again, fmt.Sprintf("%x", v)); return nil })
		if !slices.Equal(content, again) {
			t.Fatal("contents changed across reopen")
		}
	})
}
