package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/store/memtable"
	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/store/wal"
)

// crash simulates power loss under a running DB: background work stops
// without syncing anything, the strict FS drops everything unsynced, and
// the old handles are released (their writes land in detached files).
func crash(db *DB, fs *vfs.Mem) {
	db.mu.Lock()
	db.closed = true
	db.work.Broadcast()
	db.mu.Unlock()
	<-db.bgDone
	fs.Crash()
	db.wal.Close()
	db.man.Close()
	db.ver.unref()
}

type model map[string]string

func (m model) scan(lo, hi []byte) []string {
	var out []string
	for k, v := range m {
		if (lo == nil || k >= string(lo)) && (hi == nil || k < string(hi)) {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

func dbScan(t testing.TB, db *DB, lo, hi []byte) []string {
	t.Helper()
	var out []string
	if err := db.Scan(ctx, lo, hi, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

func rkey(r *rand.Rand, n int) []byte { return []byte(fmt.Sprintf("k%05d", r.IntN(n))) }

// runOps drives a random workload against db and the model, writing every
// read result to trace. Returns the (possibly reopened) db.
func runOps(t *testing.T, r *rand.Rand, fs vfs.FS, o Options, db *DB, m model, n int, keys int, trace *strings.Builder, allowCrash bool) *DB {
	t.Helper()
	for op := 0; op < n; op++ {
		switch p := r.IntN(100); {
		case p < 45:
			k := rkey(r, keys)
			v := fmt.Sprintf("v%d-%s", op, strings.Repeat("x", r.IntN(40)))
			if err := db.Put(ctx, k, []byte(v)); err != nil {
				t.Fatalf("op %d put: %v", op, err)
			}
			m[string(k)] = v
		case p < 55:
			k := rkey(r, keys)
			if err := db.Delete(ctx, k); err != nil {
				t.Fatalf("op %d delete: %v", op, err)
			}
			delete(m, string(k))
		case p < 62:
			var b Batch
			staged := model{}
			var dels []string
			for j := r.IntN(8); j >= 0; j-- {
				k := rkey(r, keys)
				if r.IntN(3) == 0 {
					b.Delete(k)
					delete(staged, string(k))
					dels = append(dels, string(k))
				} else {
					v := fmt.Sprintf("b%d.%d", op, j)
					b.Put(k, []byte(v))
					staged[string(k)] = v
				}
			}
			if _, err := db.Apply(ctx, &b); err != nil {
				t.Fatalf("op %d batch: %v", op, err)
			}
			_, _ = staged, dels
			applyToModel(m, &b) // in order: later entries win
		case p < 80:
			k := rkey(r, keys+keys/10)
			v, err := db.Get(ctx, k)
			want, ok := m[string(k)]
			switch {
			case ok && (err != nil || string(v) != want):
				t.Fatalf("op %d get %s = %q, %v; want %q", op, k, v, err, want)
			case !ok && !errors.Is(err, ErrNotFound):
				t.Fatalf("op %d get %s = %q, %v; want not found", op, k, v, err)
			}
			fmt.Fprintf(trace, "get %s %q\n", k, v)
		case p < 88:
			lo := rkey(r, keys)
			hi := append(bytes.Clone(lo), '~')
			if r.IntN(4) == 0 {
				hi = rkey(r, keys)
			}
			got, want := dbScan(t, db, lo, hi), m.scan(lo, hi)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("op %d scan [%s,%s):\n got %v\nwant %v", op, lo, hi, got, want)
			}
			fmt.Fprintf(trace, "scan %s %s %v\n", lo, hi, got)
		case p < 92:
			if err := db.Flush(ctx); err != nil {
				t.Fatalf("op %d flush: %v", op, err)
			}
		case p < 95:
			if err := db.Compact(ctx); err != nil {
				t.Fatalf("op %d compact: %v", op, err)
			}
			mustCheck(t, db)
		case p < 98 || !allowCrash:
			if err := db.Close(); err != nil {
				t.Fatalf("op %d close: %v", op, err)
			}
			db = mustOpen(t, fs, o)
			mustCheck(t, db)
		default:
			crash(db, fs.(*vfs.Mem))
			db = mustOpen(t, fs, o)
			mustCheck(t, db)
		}
	}
	return db
}

func applyToModel(m model, b *Batch) {
	walkBatch(b.data, func(kind memtable.Kind, k, v []byte) {
		if kind == memtable.KindSet {
			m[string(k)] = string(v)
		} else {
			delete(m, string(k))
		}
	})
}

func smallOptions() Options {
	return Options{MemtableSize: 4 << 10, BlockSize: 256, L0CompactionTrigger: 2, TargetFileSize: 8 << 10, LevelBaseSize: 16 << 10}
}

// TestModelWithCrashes: random puts, deletes, batches, reads, flushes,
// compactions, clean reopens and power-loss crashes (SyncAlways) against a
// map; every read matches and Check passes after every reopen.
func TestModelWithCrashes(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			fs := vfs.NewMem()
			o := smallOptions()
			db := mustOpen(t, fs, o)
			m := model{}
			var trace strings.Builder
			db = runOps(t, r, fs, o, db, m, 1500, 400, &trace, true)
			mustCheck(t, db)
			if got, want := dbScan(t, db, nil, nil), m.scan(nil, nil); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("final scan differs: %d vs %d entries", len(got), len(want))
			}
			db.Close()
		})
	}
}

// TestMetamorphic runs the same operation sequence under different option
// sets (memtable and block sizes, compaction triggers and levels, bloom
// filters and cache on/off, sync policies) and requires identical reads.
func TestMetamorphic(t *testing.T) {
	sets := map[string]Options{
		"default":        {},
		"tiny":           smallOptions(),
		"no-bloom":       {MemtableSize: 16 << 10, BitsPerKey: -1, BlockCacheSize: -1},
		"no-autocompact": {MemtableSize: 8 << 10, DisableAutoCompaction: true},
		"sync-none":      {MemtableSize: 32 << 10, Sync: wal.SyncNone, BlockSize: 512},
		"sync-interval":  {MemtableSize: 6 << 10, Sync: wal.SyncInterval, SyncInterval: 200 * time.Microsecond, L0CompactionTrigger: 3},
	}
	var ref, refName string
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		o := sets[name]
		r := rand.New(rand.NewPCG(7, 7))
		fs := vfs.NewMem()
		db := mustOpen(t, fs, o)
		var trace strings.Builder
		db = runOps(t, r, fs, o, db, model{}, 1200, 300, &trace, false)
		mustCheck(t, db)
		db.Close()
		if ref == "" {
			ref, refName = trace.String(), name
			continue
		}
		if trace.String() != ref {
			t.Fatalf("option set %q read different results than %q", name, refName)
		}
	}
}
