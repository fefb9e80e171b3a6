package mvcc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/wal"
)

// model is the reference: every committed version of every key.
type model map[string][]mversion // newest last

type mversion struct {
	ts  uint64
	val string
	del bool
}

// read returns what a reader at ts must see.
func (m model) read(key string, ts uint64) (string, bool) {
	vs := m[key]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].ts <= ts {
			return vs[i].val, !vs[i].del
		}
	}
	return "", false
}

// conflicts reports whether a transaction reading at ts may not write key.
func (m model) conflicts(key string, ts uint64) bool {
	vs := m[key]
	return len(vs) > 0 && vs[len(vs)-1].ts > ts
}

type mtxn struct {
	tx     *mvcc.Txn
	writes map[string]*string // nil value: delete
}

// TestSnapshotIsolationModel interleaves many transactions, snapshots,
// compactions and reopens at random and checks every read, every commit
// outcome and every conflict against the model.
func TestSnapshotIsolationModel(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runModel(t, uint64(seed)) })
	}
}

func runModel(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	var tick uint64 = 1000
	opts := &mvcc.Options{
		LSM: lsm.Options{DisableAutoCompaction: true, Sync: wal.SyncNone, MemtableSize: 4 << 10},
		Now: func() uint64 { tick += uint64(rng.IntN(3)); return tick },
	}
	db, err := mvcc.Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	m := model{}
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	keys[11] = "k\x00zero" // escaping on the real path
	var open []*mtxn
	var snaps []*mvcc.Snapshot
	commits, conflicts, reads := 0, 0, 0
	var collected int64

	check := func(where string, got []byte, err error, key string, ts uint64, own map[string]*string) {
		t.Helper()
		reads++
		want, ok := m.read(key, ts)
		if own != nil {
			if w, mine := own[key]; mine {
				want, ok = "", w != nil
				if w != nil {
					want = *w
				}
			}
		}
		switch {
		case err != nil && !errors.Is(err, mvcc.ErrNotFound):
			t.Fatalf("%s get %q at %d: %v", where, key, ts, err)
		case ok != (err == nil) || (ok && string(got) != want):
			t.Fatalf("%s get %q at %d = %q (err %v), model says %q found=%v", where, key, ts, got, err, want, ok)
		}
	}

	for step := 0; step < 2000; step++ {
		switch r := rng.IntN(100); {
		case r < 12 && len(open) < 6: // begin
			tx, err := db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, &mtxn{tx: tx, writes: map[string]*string{}})
		case r < 40 && len(open) > 0: // a transaction reads
			x := open[rng.IntN(len(open))]
			k := keys[rng.IntN(len(keys))]
			v, err := x.tx.Get(ctx, []byte(k))
			check("txn", v, err, k, x.tx.ReadTS(), x.writes)
		case r < 60 && len(open) > 0: // a transaction writes
			x := open[rng.IntN(len(open))]
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(5) == 0 {
				x.tx.Delete([]byte(k))
				x.writes[k] = nil
			} else {
				v := fmt.Sprintf("s%d-%d", seed, step)
				x.tx.Put([]byte(k), []byte(v))
				x.writes[k] = &v
			}
		case r < 75 && len(open) > 0: // commit or roll back
			i := rng.IntN(len(open))
			x := open[i]
			open = append(open[:i], open[i+1:]...)
			if rng.IntN(6) == 0 {
				x.tx.Rollback()
				continue
			}
			wantConflict := false
			for k := range x.writes {
				wantConflict = wantConflict || m.conflicts(k, x.tx.ReadTS())
			}
			ts, err := x.tx.Commit(ctx)
			if wantConflict {
				if !errors.Is(err, mvcc.ErrConflict) {
					t.Fatalf("step %d: commit should conflict, got ts %d err %v", step, ts, err)
				}
				conflicts++
				continue
			}
			if err != nil {
				t.Fatalf("step %d: commit: %v", step, err)
			}
			if len(x.writes) > 0 {
				commits++
				for k, v := range x.writes {
					mv := mversion{ts: ts, del: v == nil}
					if v != nil {
						mv.val = *v
					}
					if vs := m[k]; len(vs) > 0 && vs[len(vs)-1].ts >= ts {
						t.Fatalf("commit ts %d not above %d", ts, vs[len(vs)-1].ts)
					}
					m[k] = append(m[k], mv)
				}
			}
		case r < 85 && len(snaps) < 3: // a snapshot, maybe in the past
			at := uint64(0)
			if rng.IntN(2) == 0 && db.Now() > 1000 {
				at = 1000 + rng.Uint64N(db.Now()-999)
			}
			s, err := db.Snapshot(ctx, at)
			if errors.Is(err, mvcc.ErrSnapshotTooOld) {
				if at >= db.Stats().Horizon {
					t.Fatalf("snapshot at %d refused above the horizon %d", at, db.Stats().Horizon)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, s)
		case r < 93 && len(snaps) > 0: // read a snapshot, whole range or a key
			i := rng.IntN(len(snaps))
			s := snaps[i]
			if rng.IntN(3) == 0 {
				it, err := s.NewIter(ctx, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				for it.Next() {
					seen[string(it.Key())] = true
					check("iter", it.Value(), nil, string(it.Key()), s.TS(), nil)
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
				it.Close()
				for _, k := range keys {
					if _, ok := m.read(k, s.TS()); ok != seen[k] {
						t.Fatalf("iterator at %d: %q present=%v, model %v", s.TS(), k, seen[k], ok)
					}
				}
			} else {
				k := keys[rng.IntN(len(keys))]
				v, _, err := s.Get(ctx, []byte(k))
				check("snapshot", v, err, k, s.TS(), nil)
			}
			if rng.IntN(2) == 0 {
				s.Close()
				snaps = append(snaps[:i], snaps[i+1:]...)
			}
		case r < 97: // compaction under open readers
			if err := db.LSM().Compact(ctx); err != nil {
				t.Fatal(err)
			}
		default: // reopen once everyone is done
			if len(open) > 0 || len(snaps) > 0 {
				continue
			}
			collected += db.Stats().GCDropped
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = mvcc.Open(ctx, dir, opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, x := range open {
		x.tx.Rollback()
	}
	for _, s := range snaps {
		s.Close()
	}
	if err := db.LSM().Check(); err != nil {
		t.Fatal(err)
	}
	collected += db.Stats().GCDropped
	if commits == 0 || conflicts == 0 || reads < 500 || collected == 0 {
		t.Fatalf("the walk was too tame: %d commits, %d conflicts, %d reads, %d versions collected", commits, conflicts, reads, collected)
	}
	t.Logf("%d commits, %d conflicts, %d reads checked, %d versions collected", commits, conflicts, reads, collected)
}
