package mvcc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// The workload of ops/perf/oor-mvcc.md: 10,000 keys "NORAD-nnnnn" with
// 82-byte values (a TLE record's size), each written in `versions`
// commits of all keys.
const benchKeys = 10_000

func benchData() (keys [][]byte, val []byte) {
	for i := range benchKeys {
		keys = append(keys, fmt.Appendf(nil, "NORAD-%05d", i+1))
	}
	val = make([]byte, 82)
	for i := range val {
		val[i] = byte(i)
	}
	return keys, val
}

// benchOpen opens a store in a temporary directory with a 64 MiB memtable,
// so that the benchmarks' data stays in memory until they compact it.
func benchOpen(b *testing.B, sync wal.SyncPolicy) *mvcc.DB {
	b.Helper()
	db, err := mvcc.Open(context.Background(), b.TempDir(), &mvcc.Options{LSM: lsm.Options{Sync: sync, MemtableSize: 64 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchFill commits every key `versions` times (one transaction of all
// keys per version) and, if compact, moves everything into L1 SSTables.
// A snapshot at the first version stays open during the compaction, so
// garbage collection keeps all the versions.
func benchFill(b *testing.B, db *mvcc.DB, keys [][]byte, val []byte, versions int, compact bool) {
	b.Helper()
	ctx := context.Background()
	var pin *mvcc.Snapshot
	defer func() {
		if pin != nil {
			pin.Close()
		}
	}()
	for v := range versions {
		if v == 1 {
			var err error
			if pin, err = db.Snapshot(ctx, 0); err != nil {
				b.Fatal(err)
			}
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		val[0] = byte(v)
		for _, k := range keys {
			tx.Put(k, val)
		}
		if _, err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if compact {
		if err := db.LSM().Compact(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if vs, err := db.Versions(ctx, keys[0]); err != nil || len(vs) != versions {
		b.Fatalf("%d versions stored, want %d: %v", len(vs), versions, err)
	}
}

// BenchmarkSnapshotGet: point reads at the latest timestamp through one
// open snapshot (warm: its iterator and the block cache are reused), keys
// in random order, with 1 or 4 versions per key, from the memtable or
// from L1 SSTables; and open-Get-close of a snapshot per read.
func BenchmarkSnapshotGet(b *testing.B) {
	ctx := context.Background()
	keys, val := benchData()
	order := rand.New(rand.NewPCG(1, 2)).Perm(benchKeys)
	for _, versions := range []int{1, 4} {
		for _, where := range []string{"memtable", "sstable"} {
			b.Run(fmt.Sprintf("versions=%d/where=%s", versions, where), func(b *testing.B) {
				db := benchOpen(b, wal.SyncNone)
				benchFill(b, db, keys, val, versions, where == "sstable")
				if st := db.LSM().Stats(); (where == "memtable") != (st.TotalTables() == 0) {
					b.Fatalf("%s: %d SSTables", where, st.TotalTables())
				}
				snap, err := db.Snapshot(ctx, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer snap.Close()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					v, _, err := snap.Get(ctx, keys[order[i%benchKeys]])
					if err != nil || len(v) != 82 {
						b.Fatalf("get: %d bytes, %v", len(v), err)
					}
				}
			})
		}
	}
	b.Run("versions=1/where=sstable/snapshot-per-get", func(b *testing.B) {
		db := benchOpen(b, wal.SyncNone)
		benchFill(b, db, keys, val, 1, true)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			snap, err := db.Snapshot(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := snap.Get(ctx, keys[order[i%benchKeys]]); err != nil {
				b.Fatal(err)
			}
			snap.Close()
		}
	})
}

// BenchmarkTxnCommit1Key: Begin, Put of one 82-byte value, Commit, on a
// store that already holds the 10,000 keys. committers=1 commits in a
// loop; committers=32 runs 32 goroutines (b.RunParallel with parallelism
// 16 on 2 cores), each on its own keys, so commits share fsyncs (group
// commit). sync=none leaves the WAL unsynced; sync=always is the default
// (every commit waits for an fsync covering it).
func BenchmarkTxnCommit1Key(b *testing.B) {
	ctx := context.Background()
	keys, val := benchData()
	for _, sync := range []struct {
		name   string
		policy wal.SyncPolicy
	}{{"none", wal.SyncNone}, {"always", wal.SyncAlways}} {
		b.Run(fmt.Sprintf("sync=%s/committers=1", sync.name), func(b *testing.B) {
			db := benchOpen(b, sync.policy)
			benchFill(b, db, keys, val, 1, false)
			s0 := db.LSM().Stats()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tx, err := db.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tx.Put(keys[i%benchKeys], val)
				if _, err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(db.LSM().Stats().WALSyncs-s0.WALSyncs)/float64(b.N), "fsyncs/commit")
		})
		b.Run(fmt.Sprintf("sync=%s/committers=32", sync.name), func(b *testing.B) {
			db := benchOpen(b, sync.policy)
			benchFill(b, db, keys, val, 1, false)
			s0 := db.LSM().Stats()
			var next, conflicts atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Goroutine g writes keys g, g+64, g+128, ... below 9,984
				// (156 × 64): no two goroutines ever share a key.
				g := int(next.Add(1) - 1)
				if g >= 64 {
					b.Error("more than 64 committers: keys would overlap")
					return
				}
				for i := 0; pb.Next(); i++ {
					tx, err := db.Begin(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					tx.Put(keys[(g+64*i)%(benchKeys/64*64)], val)
					if _, err := tx.Commit(ctx); errors.Is(err, mvcc.ErrConflict) {
						conflicts.Add(1)
					} else if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if conflicts.Load() != 0 {
				b.Fatalf("%d conflicts between goroutines writing disjoint keys", conflicts.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(db.LSM().Stats().WALSyncs-s0.WALSyncs)/float64(b.N), "fsyncs/commit")
		})
	}
}

// BenchmarkSnapshotIter: a full scan of the 10,000 keys at the latest
// snapshot after compaction, with 1 or 4 versions per key (the iterator
// skips the older ones).
func BenchmarkSnapshotIter(b *testing.B) {
	ctx := context.Background()
	keys, val := benchData()
	for _, versions := range []int{1, 4} {
		b.Run(fmt.Sprintf("versions=%d", versions), func(b *testing.B) {
			db := benchOpen(b, wal.SyncNone)
			benchFill(b, db, keys, val, versions, true)
			snap, err := db.Snapshot(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer snap.Close()
			b.ReportAllocs()
			rows := 0
			for b.Loop() {
				it, err := snap.NewIter(ctx, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for it.Next() {
					n++
				}
				if err := it.Err(); err != nil || n != benchKeys {
					b.Fatalf("iterated %d keys: %v", n, err)
				}
				it.Close()
				rows += n
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
