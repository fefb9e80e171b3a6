package lsm

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/meridian-ops/meridian/store/vfs"
)

// Disk-full tests: the WAL, a flush and a compaction each run out of
// space. Each time the caller gets an error that says so (errors.Is
// syscall.ENOSPC), no acknowledged write is lost, and once space returns a
// reopened DB passes Check and takes writes again. (TestFaultInjection
// mixes a DiskFull budget into random faults; these pin down each path.)

// fullTables makes every write to an SSTable fail with ENOSPC after
// writing half its buffer, as a file system that fills up under a flush or
// compaction would; WAL and manifest writes still go through.
func fullTables(op vfs.Op, name string) error {
	if op == vfs.OpWrite && strings.HasSuffix(name, ".sst") {
		return vfs.ErrNoSpace
	}
	return nil
}

type diskFullDB struct {
	t      *testing.T
	mem    *vfs.Mem
	ff     *vfs.Faulty
	o      Options
	db     *DB
	acked  map[string]string
	maybe  map[string]string // a put that failed: it may or may not be there
	n      int
	closed bool // db already closed
}

func newDiskFullDB(t *testing.T, o Options) *diskFullDB {
	mem := vfs.NewMem()
	ff := vfs.NewFaulty(mem, nil)
	ff.ShortWrites = true
	d := &diskFullDB{t: t, mem: mem, ff: ff, o: o, acked: map[string]string{}, maybe: map[string]string{}}
	d.db = mustOpen(t, ff, o)
	return d
}

// put writes the next key (cycling over 300) and records the outcome.
func (d *diskFullDB) put() error {
	k, v := fmt.Sprintf("k%03d", d.n%300), fmt.Sprintf("v%05d-%s", d.n, strings.Repeat("x", 60))
	d.n++
	if err := d.db.Put(ctx, []byte(k), []byte(v)); err != nil {
		d.maybe[k] = v
		return err
	}
	d.acked[k] = v
	delete(d.maybe, k)
	return nil
}

// verify checks every acknowledged write (or a later unacknowledged one).
func (d *diskFullDB) verify(when string) {
	d.t.Helper()
	for k, want := range d.acked {
		got, err := d.db.Get(ctx, []byte(k))
		if err != nil || (string(got) != want && string(got) != d.maybe[k]) {
			d.t.Fatalf("%s: %s = %.8q, %v; acknowledged %.8q", when, k, got, err, want)
		}
	}
}

// reopen closes the DB (or crashes it: power loss), gives the space back,
// reopens, and checks everything.
func (d *diskFullDB) reopen(crashIt bool) {
	d.t.Helper()
	if crashIt {
		crash(d.db, d.mem)
	} else if d.closed {
		d.closed = false
	} else if err := d.db.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		d.t.Fatalf("close after disk full: %v", err)
	}
	d.ff.SetInjector(nil)
	d.ff.DiskFull(-1)
	d.db = mustOpen(d.t, d.ff, d.o)
	mustCheck(d.t, d.db)
	d.verify("after reopen")
	for k, v := range d.maybe { // settle: what the reopen found is now the state
		if got, err := d.db.Get(ctx, []byte(k)); err == nil && string(got) == v {
			d.acked[k] = v
		}
	}
	d.maybe = map[string]string{}
}

// writesWork proves the DB is healthy again: puts, a flush, a compaction.
func (d *diskFullDB) writesWork() {
	d.t.Helper()
	for i := 0; i < 400; i++ {
		if err := d.put(); err != nil {
			d.t.Fatalf("put after space returned: %v", err)
		}
	}
	if err := d.db.Compact(ctx); err != nil {
		d.t.Fatalf("compact after space returned: %v", err)
	}
	mustCheck(d.t, d.db)
	d.verify("after space returned")
}

func wantNoSpace(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("%s: %v; want an error wrapping ENOSPC", what, err)
	}
}

// The WAL append runs out of space: the Put fails with ENOSPC, reads keep
// working, and after a restart (clean close, or power loss) with space
// back every acknowledged write is there. Reopening while the disk is
// still full fails cleanly or works, and damages nothing.
func TestDiskFullWALAppend(t *testing.T) {
	for _, crashIt := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crashIt), func(t *testing.T) {
			d := newDiskFullDB(t, smallOptions())
			for i := 0; i < 500; i++ { // several flushes and compactions first
				if err := d.put(); err != nil {
					t.Fatal(err)
				}
			}
			d.ff.DiskFull(3000)
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				err = d.put()
			}
			wantNoSpace(t, "put on a full disk", err)
			if err := d.put(); err == nil {
				t.Fatal("a put after the WAL failed was acknowledged")
			}
			d.verify("while full")

			if !crashIt {
				if err := d.db.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("close while full: %v", err)
				}
				// A restart while the disk is still full.
				d.ff.DiskFull(0)
				o := d.o
				o.FS = d.ff
				if db, err := Open(ctx, "db", &o); err == nil {
					t.Log("open on a full disk worked")
					mustCheck(t, db)
					d.db = db
					d.verify("reopened while full")
					if err := db.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("close: %v", err)
					}
				} else {
					t.Logf("open on a full disk: %v", err)
					wantNoSpace(t, "open on a full disk", err)
				}
				d.closed = true
			}
			d.reopen(crashIt)
			d.writesWork()
			d.db.Close()
		})
	}
}

// A flush runs out of space: Flush reports ENOSPC (as a background
// failure), further writes are refused with that error, reads still see
// everything, and a restart with space back removes the half-written
// table and recovers the memtable's writes from the WAL.
func TestDiskFullFlush(t *testing.T) {
	for _, crashIt := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crashIt), func(t *testing.T) {
			o := smallOptions()
			o.MemtableSize = 64 << 10 // flushes only when asked
			d := newDiskFullDB(t, o)
			for i := 0; i < 300; i++ {
				if err := d.put(); err != nil {
					t.Fatal(err)
				}
			}
			d.ff.SetInjector(fullTables)
			err := d.db.Flush(ctx)
			wantNoSpace(t, "flush on a full disk", err)
			if !errors.Is(err, ErrBackground) {
				t.Fatalf("flush error %v does not say the background flush failed", err)
			}
			err = d.put()
			wantNoSpace(t, "put after the flush failed", err)
			d.verify("after the failed flush")
			mustCheck(t, d.db) // the half-written table is gone already
			d.reopen(crashIt)
			if n := d.db.Recovery().OrphansRemoved; n != 0 {
				t.Fatalf("reopen found %d orphan tables; the failed flush should have removed its own", n)
			}
			d.writesWork()
			d.db.Close()
		})
	}
}

// A compaction runs out of space. An explicit Compact returns ENOSPC and
// the DB keeps working (with no half-written table left taking space);
// an automatic one is a background failure that a restart recovers.
func TestDiskFullCompaction(t *testing.T) {
	t.Run("explicit", func(t *testing.T) {
		o := smallOptions()
		o.DisableAutoCompaction = true
		o.MemtableSize = 16 << 10
		d := newDiskFullDB(t, o)
		for i := 0; i < 900; i++ { // several L0 tables
			if err := d.put(); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		d.ff.SetInjector(fullTables)
		if l0 := len(d.db.ver.levels[0]); l0 < 3 {
			t.Fatalf("only %d L0 tables to compact", l0)
		}
		wantNoSpace(t, "compaction on a full disk", d.db.Compact(ctx))
		mustCheck(t, d.db)        // no orphan output left behind
		for i := 0; i < 50; i++ { // writes go on (WAL and memtable, no flush yet)
			if err := d.put(); err != nil {
				t.Fatalf("put after a failed compaction: %v", err)
			}
		}
		d.verify("after the failed compaction")
		d.ff.SetInjector(nil)
		d.writesWork() // the same DB compacts once space returns
		d.reopen(false)
		d.db.Close()
	})
	t.Run("background", func(t *testing.T) {
		d := newDiskFullDB(t, smallOptions())
		for i := 0; i < 300; i++ {
			if err := d.put(); err != nil {
				t.Fatal(err)
			}
		}
		d.ff.SetInjector(fullTables)
		var err error
		for i := 0; i < 5000 && err == nil; i++ {
			if err = d.put(); err == nil && i%100 == 99 {
				err = d.db.Flush(ctx)
			}
		}
		wantNoSpace(t, "writes while flush/compaction hit a full disk", err)
		if !errors.Is(err, ErrBackground) {
			t.Fatalf("%v does not say background work failed", err)
		}
		d.verify("after the background failure")
		d.reopen(false)
		d.writesWork()
		d.db.Close()
	})
}
