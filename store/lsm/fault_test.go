package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/meridian-ops/meridian/store/memtable"
	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/store/wal"
)

// TestFaultInjection runs writes (tiny memtable, so flushes and
// compactions run too) on a file system that fails writes, fsyncs,
// creates, renames and directory syncs at random, cuts writes short and
// runs out of space. Every failure must reach a caller as an error; after
// each failure the machine "loses power", the DB is reopened without
// faults, and every acknowledged write must be there (or a newer
// unacknowledged one), with Check passing.
func TestFaultInjection(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 5))
			mem := vfs.NewMem()
			ff := vfs.NewFaulty(mem, nil)
			ff.ShortWrites = true
			o := smallOptions()
			db := mustOpen(t, ff, o)
			acked := map[string]string{}   // last acknowledged value
			maybe := map[string][]string{} // unacknowledged values written after it
			surfaced, puts, bg := 0, 0, 0
			for round := 0; round < 8; round++ {
				rate := 0.0002 + r.Float64()*0.002
				ops := []vfs.Op{vfs.OpWrite, vfs.OpSync, vfs.OpCreate, vfs.OpRename, vfs.OpSyncDir}
				fr := rand.New(rand.NewPCG(seed, uint64(round)))
				var frMu sync.Mutex // the injector runs on background goroutines too
				ff.SetInjector(func(op vfs.Op, name string) error {
					frMu.Lock()
					defer frMu.Unlock()
					for _, o := range ops {
						if o == op && fr.Float64() < rate {
							return vfs.ErrInjected
						}
					}
					return nil
				})
				if round%3 == 2 {
					ff.DiskFull(int64(20000 + r.IntN(20000)))
				}
				var failure error
				for i := 0; i < 3000 && failure == nil; i++ {
					k := fmt.Sprintf("k%04d", r.IntN(500))
					v := fmt.Sprintf("r%d.%d", round, i)
					if err := db.Put(ctx, []byte(k), []byte(v)); err != nil {
						failure = err
						maybe[k] = append(maybe[k], v)
						break
					}
					acked[k], maybe[k] = v, nil
					puts++
					if i%500 == 499 {
						if err := db.Flush(ctx); err != nil {
							failure = err
						}
					}
				}
				if failure != nil {
					surfaced++
					if errors.Is(failure, ErrBackground) {
						bg++
					}
					if !errors.Is(failure, vfs.ErrInjected) && !errors.Is(failure, vfs.ErrNoSpace) {
						t.Fatalf("round %d: error does not carry the injected cause: %v", round, failure)
					}
				}
				ff.SetInjector(nil)
				ff.DiskFull(-1)
				crash(db, mem)
				db = mustOpen(t, ff, o)
				mustCheck(t, db)
				for k := range maybe {
					v, err := db.Get(ctx, []byte(k))
					want, ok := acked[k]
					switch {
					case err == nil && string(v) == want:
					case err == nil && contains(maybe[k], string(v)):
						acked[k] = string(v) // an unacknowledged write made it
					case errors.Is(err, ErrNotFound) && !ok:
					default:
						t.Fatalf("round %d: key %s = %q, %v; acknowledged %q (ok=%v), unacknowledged %v", round, k, v, err, want, ok, maybe[k])
					}
					maybe[k] = nil
				}
			}
			db.Close()
			t.Logf("%d acknowledged puts, %d failures surfaced (%d from background flush/compaction)", puts, surfaced, bg)
			if surfaced == 0 {
				t.Fatal("no injected fault reached a caller")
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSyncNoneCrashRecoversAPrefix: with no fsync policy, a power loss may
// lose writes, but what survives is exactly the first LastLSN batches, in
// order: never a later write without an earlier one.
func TestSyncNoneCrashRecoversAPrefix(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewPCG(seed, 8))
		mem := vfs.NewMem()
		o := Options{MemtableSize: 16 << 10, Sync: wal.SyncNone, L0CompactionTrigger: 2}
		db := mustOpen(t, mem, o)
		var history []Batch
		for i := 0; i < 3000; i++ {
			var b Batch
			for j := r.IntN(3); j >= 0; j-- {
				k := []byte(fmt.Sprintf("k%03d", r.IntN(300)))
				if r.IntN(4) == 0 {
					b.Delete(k)
				} else {
					b.Put(k, []byte(fmt.Sprintf("v%d", i)))
				}
			}
			if _, err := db.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			history = append(history, b)
			if r.IntN(400) == 0 {
				db.SyncWAL(ctx)
			}
		}
		crash(db, mem)
		db = mustOpen(t, mem, o)
		last := int(db.Recovery().LastLSN)
		m := model{}
		for _, b := range history[:last] {
			applyToModel(m, &b)
		}
		got, want := dbScan(t, db, nil, nil), m.scan(nil, nil)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: state after crash is not the prefix of %d batches", seed, last)
		}
		mustCheck(t, db)
		db.Close()
	}
}

type dropPrefix struct{ info CompactionInfo }

func (d dropPrefix) Filter(key, value []byte) Decision {
	if bytes.HasPrefix(key, []byte("gc/")) {
		return Drop
	}
	return Keep
}

// TestCompactionFilter: the hook sees compacted entries and its Drop
// removes keys (as tombstones above the bottom level, outright at it).
func TestCompactionFilter(t *testing.T) {
	var infos []CompactionInfo
	o := Options{MemtableSize: 8 << 10, NewCompactionFilter: func(ci CompactionInfo) CompactionFilter {
		infos = append(infos, ci)
		return dropPrefix{ci}
	}}
	db := mustOpen(t, vfs.NewMem(), o)
	defer db.Close()
	for i := 0; i < 500; i++ {
		db.Put(ctx, []byte(fmt.Sprintf("gc/%03d", i)), []byte("old"))
		db.Put(ctx, []byte(fmt.Sprintf("keep/%03d", i)), []byte("v"))
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if len(infos) == 0 || !infos[len(infos)-1].Bottommost {
		t.Fatalf("filter infos %+v", infos)
	}
	n := 0
	db.Scan(ctx, nil, nil, func(k, v []byte) error {
		if bytes.HasPrefix(k, []byte("gc/")) {
			t.Fatalf("filtered key %s survived", k)
		}
		n++
		return nil
	})
	if n != 500 || db.Stats().FilterDropped < 500 || countTombstones(t, db) != 0 {
		t.Fatalf("kept %d, dropped %d", n, db.Stats().FilterDropped)
	}
}

// TestIteratorSnapshot: an iterator keeps reading the state it was created
// on while writes, flushes and compactions (which delete its tables) go on.
func TestIteratorSnapshot(t *testing.T) {
	db := mustOpen(t, vfs.NewMem(), Options{MemtableSize: 8 << 10})
	defer db.Close()
	for i := uint32(0); i < 1000; i++ {
		db.Put(ctx, key(i), value(i, 1))
	}
	db.Flush(ctx)
	it, err := db.NewIter(ctx, &IterOptions{LowerBound: key(100), UpperBound: key(900)})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 1000; i++ {
		db.Put(ctx, key(i), value(i, 2))
		if i%2 == 0 {
			db.Delete(ctx, key(i))
		}
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	n := uint32(100)
	for ok := it.First(); ok; ok = it.Next() {
		if !bytes.Equal(it.Key(), key(n)) || !bytes.Equal(it.Value(), value(n, 1)) {
			t.Fatalf("snapshot iterator at %x, want key %d gen 1", it.Key(), n)
		}
		n++
	}
	if n != 900 || it.Close() != nil {
		t.Fatalf("iterated to %d", n)
	}
	it2, _ := db.NewIter(ctx, nil)
	defer it2.Close()
	if !it2.SeekGE(key(500)) || !bytes.Equal(it2.Key(), key(501)) || !bytes.Equal(it2.Value(), value(501, 2)) {
		t.Fatalf("new iterator SeekGE(500) at %x", it2.Key())
	}
	mustCheck(t, db)
}

func FuzzBatchDecode(f *testing.F) {
	var b Batch
	b.Put([]byte("a"), []byte("1"))
	b.Delete([]byte("b"))
	f.Add(b.data)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var re Batch
		n, err := decodeBatch(data, func(kind memtable.Kind, k, v []byte) {
			if kind == memtable.KindSet {
				re.Put(k, v)
			} else {
				re.Delete(k)
			}
		})
		if err != nil {
			return
		}
		if n != re.Len() || !bytes.Equal(re.data, data) {
			t.Fatal("accepted batch does not re-encode to itself")
		}
	})
}
