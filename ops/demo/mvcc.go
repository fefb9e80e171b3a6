package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/lsm"
	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/store/wal"
)

// MVCC runs the course's "Conjunction Query Engine with MVCC Snapshot
// Reads" acceptance criteria (Module 5) on store/mvcc and store/catalog in
// a temporary directory: key encoding, snapshot reads, tombstones,
// concurrent reads and writes, write conflicts, watermark garbage
// collection and the conjunction simulation on a 10,000-object catalog. It
// prints the figures and returns an error if a criterion fails.
func MVCC(ctx context.Context, w io.Writer) error { return MVCCIn(ctx, w, "") }

// MVCCIn is MVCC with its stores under dir, one fresh subdirectory per
// scenario, kept afterwards for inspection; "" means a temporary directory
// removed at the end. The scenarios set their own commit clock, so the
// subdirectories must not hold an earlier run's store.
func MVCCIn(ctx context.Context, w io.Writer, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "meridian-demo-mvcc-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d := &mvccDemo{ctx: ctx, w: w, dir: dir}
	d.p("MVCC snapshot isolation on the LSM engine (%s)\n", dir)
	for _, step := range []func() error{d.keyEncoding, d.snapshotReads, d.tombstones, d.concurrent, d.conflict, d.gc, d.conjunction} {
		if err := step(); err != nil {
			return fmt.Errorf("demo mvcc: %w", err)
		}
	}
	if len(d.failed) > 0 {
		return fmt.Errorf("demo mvcc: %d criteria failed: %v", len(d.failed), d.failed)
	}
	d.p("\nall criteria hold\n")
	return nil
}

type mvccDemo struct {
	ctx    context.Context
	w      io.Writer
	dir    string
	failed []string
}

func (d *mvccDemo) p(format string, a ...any) { fmt.Fprintf(d.w, format, a...) }

func (d *mvccDemo) check(ok bool, format string, a ...any) {
	status := "PASS"
	if !ok {
		status = "FAIL"
		d.failed = append(d.failed, fmt.Sprintf(format, a...))
	}
	d.p("    [%s] %s\n", status, fmt.Sprintf(format, a...))
}

// demoClock is a settable commit clock (mvcc.Options.Now): the next commit
// gets max(t, last+1), so setting t chooses the commit timestamp.
type demoClock struct{ t atomic.Uint64 }

func (c *demoClock) now() uint64 { return c.t.Load() }

// open opens a fresh store in dir/name; clk (if set) is its commit clock.
func (d *mvccDemo) open(name string, clk *demoClock, mod func(*mvcc.Options)) (*mvcc.DB, error) {
	path := filepath.Join(d.dir, name)
	if ents, err := os.ReadDir(path); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty: the scenarios need fresh stores (choose an empty --dir)", path)
	}
	o := &mvcc.Options{}
	if clk != nil {
		o.Now = clk.now
	}
	if mod != nil {
		mod(o)
	}
	db, err := mvcc.Open(d.ctx, path, o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return db, nil
}

func (d *mvccDemo) write(db *mvcc.DB, key string, val []byte, del bool) (uint64, error) {
	tx, err := db.Begin(d.ctx)
	if err != nil {
		return 0, err
	}
	if del {
		tx.Delete([]byte(key))
	} else {
		tx.Put([]byte(key), val)
	}
	return tx.Commit(d.ctx)
}

// readAt reads key in a snapshot at ts: value, version timestamp, found.
func (d *mvccDemo) readAt(db *mvcc.DB, key string, ts uint64) (string, uint64, bool, error) {
	s, err := db.Snapshot(d.ctx, ts)
	if err != nil {
		return "", 0, false, err
	}
	defer s.Close()
	v, vts, err := s.Get(d.ctx, []byte(key))
	if errors.Is(err, mvcc.ErrNotFound) {
		return "", 0, false, nil
	}
	return string(v), vts, err == nil, err
}

func versionList(vs []mvcc.Version) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v.TS)
		if v.Deleted {
			parts[i] += " (delete)"
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func tsList(vs []mvcc.Version) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = v.TS
	}
	return out
}

// [1] Newer versions sort first, user-key order is kept, encodings round-trip.
func (d *mvccDemo) keyEncoding() error {
	d.p("\n[1] MVCC key encoding: 'd' | escaped user key | 00 01 | ^commit_ts (8 bytes big-endian)\n")
	for _, ts := range []uint64{110, 80, 50} {
		enc := mvcc.AppendKey(nil, []byte("NORAD-25544"), ts)
		d.p("    NORAD-25544 ts=%-3d  %x | %x\n", ts, enc[:len(enc)-8], enc[len(enc)-8:])
	}
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, []byte("NORAD-25544"), []byte("NORAD-25544\x00"), []byte("NORAD-25545"), {0xFF}}
	tss := []uint64{1<<64 - 2, 1 << 40, 110, 80, 50, 1} // newest first
	var prev []byte
	ordered, roundTrip, n := true, true, 0
	for _, k := range keys {
		for _, ts := range tss {
			enc := mvcc.AppendKey(nil, k, ts)
			if prev != nil && bytes.Compare(prev, enc) >= 0 {
				ordered = false
			}
			prev = enc
			got, gts, err := mvcc.DecodeKey(nil, enc)
			if err != nil || !bytes.Equal(got, k) || gts != ts {
				roundTrip = false
			}
			n++
		}
	}
	d.p("    %d encodings (%d user keys, zero bytes included, × %d timestamps) in (user key asc, ts desc) order:\n", n, len(keys), len(tss))
	d.check(ordered, "byte order is user-key order, then newest version first")
	d.check(roundTrip, "every encoding decodes back to its user key and timestamp")
	return nil
}

// [2] Versions at 50, 80, 110 read at 60, 90, 120.
func (d *mvccDemo) snapshotReads() error {
	d.p("\n[2] snapshot reads of NORAD-25544\n")
	clk := &demoClock{}
	db, err := d.open("2-snapshot-reads", clk, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, ts := range []uint64{50, 80, 110} {
		clk.t.Store(ts)
		got, err := d.write(db, "NORAD-25544", []byte(fmt.Sprint("elset@", ts)), false)
		if err != nil {
			return err
		}
		d.check(got == ts, "committed version at ts %d (clock %d)", got, ts)
	}
	vs, err := db.Versions(d.ctx, []byte("NORAD-25544"))
	if err != nil {
		return err
	}
	d.p("    stored versions in LSM order: %s\n", versionList(vs))
	d.check(slices.Equal(tsList(vs), []uint64{110, 80, 50}), "the LSM holds the versions newest first")
	for _, tc := range []struct{ at, want uint64 }{{60, 50}, {90, 80}, {120, 110}} {
		v, vts, ok, err := d.readAt(db, "NORAD-25544", tc.at)
		if err != nil {
			return err
		}
		d.check(ok && vts == tc.want && v == fmt.Sprint("elset@", tc.want), "read at ts %d -> %q (version ts %d), want version %d", tc.at, v, vts, tc.want)
	}
	_, _, ok, err := d.readAt(db, "NORAD-25544", 49)
	if err != nil {
		return err
	}
	d.check(!ok, "read at ts 49 -> not found (before the first version)")
	return nil
}

// [3] A delete at 80 hides the version from 50 for snapshots at 80 and later only.
func (d *mvccDemo) tombstones() error {
	d.p("\n[3] tombstone visibility of NORAD-99999 (put at 50, delete at 80)\n")
	clk := &demoClock{}
	db, err := d.open("3-tombstone", clk, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	clk.t.Store(50)
	if _, err := d.write(db, "NORAD-99999", []byte("elset@50"), false); err != nil {
		return err
	}
	clk.t.Store(80)
	if _, err := d.write(db, "NORAD-99999", nil, true); err != nil {
		return err
	}
	vs, err := db.Versions(d.ctx, []byte("NORAD-99999"))
	if err != nil {
		return err
	}
	d.p("    stored versions: %s\n", versionList(vs))
	v, vts, ok, err := d.readAt(db, "NORAD-99999", 60)
	if err != nil {
		return err
	}
	d.check(ok && v == "elset@50" && vts == 50, "read at ts 60 -> %q (version ts %d)", v, vts)
	_, _, ok, err = d.readAt(db, "NORAD-99999", 90)
	if err != nil {
		return err
	}
	d.check(!ok, "read at ts 90 -> not found (found=%v)", ok)
	return nil
}

// [4] 10,000 reads at a fixed snapshot while 1,000 transactions commit.
func (d *mvccDemo) concurrent() error {
	const minReads, writes = 10_000, 1_000
	d.p("\n[4] concurrent reads and writes: %d+ reads at one snapshot vs %d commits\n", minReads, writes)
	// Without fsync a commit takes microseconds, so the writer runs about as
	// long as the reads and they interleave; with an fsync per commit (~ms)
	// all the reads would fit between two commits. Sync policies are
	// compared in the benchmarks (ops/perf/oor-mvcc.md).
	db, err := d.open("4-concurrent", nil, func(o *mvcc.Options) { o.LSM.Sync = wal.SyncNone })
	if err != nil {
		return err
	}
	defer db.Close()
	keys := [][]byte{[]byte("NORAD-25544"), []byte("NORAD-43013")}
	value := func(rev uint32) []byte {
		r := tle.Record{NoradID: 25544, Epoch: 26001.5, MeanMotion: 15.5, Inclination: 51.64, ElementSet: 999, RevNumber: rev}
		b, _ := r.MarshalBinary()
		return b
	}
	// Both keys move together in every commit: a snapshot must see one pair.
	tx, err := db.Begin(d.ctx)
	if err != nil {
		return err
	}
	base := value(0)
	tx.Put(keys[0], base)
	tx.Put(keys[1], base)
	baseTS, err := tx.Commit(d.ctx)
	if err != nil {
		return err
	}
	snap, err := db.Snapshot(d.ctx, 0)
	if err != nil {
		return err
	}
	snapOpen := true
	defer func() {
		if snapOpen {
			snap.Close()
		}
	}()

	wctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	var committed atomic.Int64
	var werr error
	var welapsed time.Duration
	first, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for i := 1; i <= writes; i++ {
			tx, err := db.Begin(wctx)
			if err != nil {
				werr = err
				break
			}
			v := value(uint32(i))
			tx.Put(keys[0], v)
			tx.Put(keys[1], v)
			if _, err := tx.Commit(wctx); err != nil {
				werr = err
				break
			}
			if committed.Add(1) == 1 {
				close(first)
			}
		}
		welapsed = time.Since(start)
		if committed.Load() == 0 {
			close(first)
		}
	}()

	// The reads start with the writer under way and go on until it is done
	// (at least 10,000), so they overlap its commits whatever the scheduler.
	// The snapshot stays open until the writer is done: had a writer to
	// wait for readers, it would not finish before the deadline.
	<-first
	atStart := committed.Load()
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	reads, consistent, pairs := 0, 0, 0
	writerDone := func() bool {
		select {
		case <-done:
			return true
		default:
			return time.Now().After(deadline)
		}
	}
	for reads < minReads || !writerDone() {
		reads += 2
		ok := true
		for _, k := range keys {
			v, vts, err := snap.Get(d.ctx, k)
			if err == nil && vts == baseTS && bytes.Equal(v, base) {
				consistent++
			} else {
				ok = false
			}
		}
		if ok {
			pairs++
		}
	}
	relapsed := time.Since(start)
	atEnd := committed.Load()
	d.p("    reads at snapshot ts %d: %d of %d returned the snapshot's version (ts %d, both keys from one commit) in %v (%.2f M reads/s)\n",
		snap.TS(), consistent, reads, baseTS, relapsed.Round(time.Microsecond), float64(reads)/relapsed.Seconds()/1e6)
	d.p("    commits that landed while the reads ran: %d (writer at %d of %d when they began, %d when they ended)\n",
		atEnd-atStart, atStart, writes, atEnd)
	d.check(reads >= minReads && consistent == reads && pairs == reads/2, "%d/%d reads consistent: no torn reads, no version mixing", consistent, reads)

	blocked := false
	select {
	case <-done:
	default: // the deadline passed
		blocked = true
		cancel()
		<-done
	}
	if werr != nil && !blocked {
		return fmt.Errorf("writer: %w", werr)
	}
	d.p("    writer (WAL without fsync): %d commits of 2 keys in %v (%.0f commits/s), all while the reader's snapshot was open\n",
		committed.Load(), welapsed.Round(time.Millisecond), float64(committed.Load())/welapsed.Seconds())
	d.check(!blocked && committed.Load() == writes, "writer not blocked: %d/%d commits finished with the snapshot held open", committed.Load(), writes)
	snapOpen = false
	if err := snap.Close(); err != nil {
		return err
	}
	latest := value(writes)
	for _, k := range keys {
		v, _, ok, err := d.readAt(db, string(k), 0)
		if err != nil {
			return err
		}
		d.check(ok && v == string(latest), "a new snapshot sees commit %d of %s", writes, k)
	}
	return nil
}

// [5] Two transactions with overlapping snapshots write the same key.
func (d *mvccDemo) conflict() error {
	d.p("\n[5] write conflict detection (first committer wins)\n")
	db, err := d.open("5-conflict", nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	key := []byte("NORAD-25544")
	if _, err := d.write(db, string(key), []byte("base"), false); err != nil {
		return err
	}
	t1, err := db.Begin(d.ctx)
	if err != nil {
		return err
	}
	defer t1.Rollback()
	t2, err := db.Begin(d.ctx)
	if err != nil {
		return err
	}
	defer t2.Rollback()
	t1.Put(key, []byte("from T1"))
	t2.Put(key, []byte("from T2"))
	ts1, err1 := t1.Commit(d.ctx)
	d.p("    T1 (read ts %d) and T2 (read ts %d) both write %s\n", t1.ReadTS(), t2.ReadTS(), key)
	_, err2 := t2.Commit(d.ctx)
	d.check(err1 == nil, "T1 commits first at ts %d (err %v)", ts1, err1)
	d.check(errors.Is(err2, mvcc.ErrConflict), "T2 is aborted: %v", err2)
	v, vts, _, err := d.readAt(db, string(key), 0)
	if err != nil {
		return err
	}
	d.check(v == "from T1" && vts == ts1, "the stored value is T1's %q at ts %d", v, vts)
	// A retried T2 reads T1's commit and succeeds; disjoint keys never conflict.
	t3, err := db.Begin(d.ctx)
	if err != nil {
		return err
	}
	t3.Put(key, []byte("from T2, retried"))
	ts3, err3 := t3.Commit(d.ctx)
	ta, _ := db.Begin(d.ctx)
	tb, _ := db.Begin(d.ctx)
	ta.Put([]byte("NORAD-43013"), []byte("a"))
	tb.Put([]byte("NORAD-48274"), []byte("b"))
	_, erra := ta.Commit(d.ctx)
	_, errb := tb.Commit(d.ctx)
	st := db.Stats()
	d.check(err3 == nil && erra == nil && errb == nil && st.Conflicts == 1,
		"T2 retried from Begin commits at ts %d; two concurrent writers of disjoint keys both commit; conflicts counted: %d", ts3, st.Conflicts)
	return nil
}

// [6] Watermark 100, versions 30/70/90/120, compaction.
func (d *mvccDemo) gc() error {
	d.p("\n[6] garbage collection at watermark 100, versions at 30, 70, 90, 120\n")
	for _, tc := range []struct {
		retain int // 0: the default (2)
		name   string
		keep   []uint64
	}{{0, "default RetainBelowWatermark=2 (the course's safety margin)", []uint64{120, 90, 70}},
		{1, "RetainBelowWatermark=1 (the minimum that is correct)", []uint64{120, 90}}} {
		if err := d.gcRun(tc.retain, tc.name, tc.keep); err != nil {
			return err
		}
	}
	return nil
}

func (d *mvccDemo) gcRun(retain int, name string, keep []uint64) error {
	clk := &demoClock{}
	db, err := d.open(fmt.Sprintf("6-gc-retain%d", retain), clk, func(o *mvcc.Options) {
		o.RetainBelowWatermark = retain
		o.LSM = lsm.Options{DisableAutoCompaction: true}
	})
	if err != nil {
		return err
	}
	defer db.Close()
	key := "NORAD-25544"
	for _, ts := range []uint64{30, 70, 90, 120} {
		clk.t.Store(ts)
		if _, err := d.write(db, key, []byte(fmt.Sprint("elset@", ts)), false); err != nil {
			return err
		}
	}
	reader, err := db.Snapshot(d.ctx, 100) // the oldest open reader
	if err != nil {
		return err
	}
	defer reader.Close()
	before, err := db.Versions(d.ctx, []byte(key))
	if err != nil {
		return err
	}
	wm := db.Watermark()
	if err := db.LSM().Compact(d.ctx); err != nil {
		return err
	}
	after, err := db.Versions(d.ctx, []byte(key))
	if err != nil {
		return err
	}
	st := db.Stats()
	d.p("    %s: watermark %d (oldest reader at ts %d), versions %v -> compaction -> %v, %d dropped\n",
		name, wm, reader.TS(), tsList(before), tsList(after), st.GCDropped)
	kept := tsList(after)
	var verdict []string
	for _, v := range tsList(before) {
		why := "collected"
		if slices.Contains(kept, v) {
			switch {
			case v > wm:
				why = "kept (above the watermark)"
			case v == 90:
				why = "kept (what a reader at the watermark sees)"
			default:
				why = "kept (safety margin)"
			}
		}
		verdict = append(verdict, fmt.Sprintf("ts=%d %s", v, why))
	}
	d.p("      %s\n", strings.Join(verdict, "; "))
	val, vts, err := reader.Get(d.ctx, []byte(key))
	if err != nil {
		return err
	}
	_, tooOld := db.Snapshot(d.ctx, 50)
	d.check(wm == 100 && slices.Equal(kept, keep) && string(val) == "elset@90" && vts == 90 && errors.Is(tooOld, mvcc.ErrSnapshotTooOld),
		"kept %v; the reader at 100 still reads version %d; a new snapshot at 50 is refused (%v)", kept, vts, tooOld)
	return db.LSM().Check()
}

// [7] 10,000 TLEs through catalog.Apply; a conjunction query over 100
// objects at one snapshot while 50 of them are updated.
func (d *mvccDemo) conjunction() error {
	const objects, batch, queried, updated = 10_000, 1_000, 100, 50
	d.p("\n[7] conjunction simulation: %d TLEs, a query over %d objects while %d of them are updated\n", objects, queried, updated)
	db, err := d.open("7-conjunction", nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	cat, err := catalog.New(db, nil)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(7, 2026))
	loaded := make(map[uint32]tle.Record, objects)
	start := time.Now()
	commits := 0
	ups := make([]catalog.Update, 0, batch)
	for id := uint32(1); id <= objects; id++ {
		rec := randomTLE(id, r)
		loaded[id] = rec
		ups = append(ups, catalog.Update{Source: "18th-sds", Rec: rec})
		if len(ups) == batch || id == objects {
			res, err := cat.Apply(d.ctx, ups)
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			if res.Written != len(ups) || res.Resolved != len(ups) {
				return fmt.Errorf("load: %+v for %d updates", res, len(ups))
			}
			commits++
			ups = ups[:0]
		}
	}
	took := time.Since(start)
	d.p("    loaded %d TLEs (source 18th-sds) through catalog.Apply in %d group commits of %d: %v (%.0f TLEs/s)\n",
		objects, commits, batch, took.Round(time.Millisecond), objects/took.Seconds())

	ids := make([]uint32, queried)
	for i := range ids {
		ids[i] = uint32(5000 + 3*i)
	}
	snap, err := cat.Snapshot(d.ctx, 0)
	if err != nil {
		return err
	}
	defer snap.Close()
	// The query reads its first 50 objects, the 50 updates start (every
	// other object: 25 of them already read, 25 not yet), and the query
	// reads its last 50 once all the updates have committed. While they run,
	// the 100 objects are re-read at the same snapshot, pass after pass.
	var bad []string
	read := func(id uint32) (bool, error) {
		e, err := snap.Get(d.ctx, id)
		if err != nil {
			return false, fmt.Errorf("query object %d: %w", id, err)
		}
		ok := e.Rec == loaded[id] && e.Source == "18th-sds" && e.CommitTS <= snap.TS()
		if !ok && len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%d: %s epoch %.4f ts %d", id, e.Source, e.Rec.Epoch, e.CommitTS))
		}
		return ok, nil
	}
	queryRead, queryPre := 0, 0
	query := func(ids []uint32) error {
		for _, id := range ids {
			ok, err := read(id)
			if err != nil {
				return err
			}
			queryRead++
			if ok {
				queryPre++
			}
		}
		return nil
	}
	if err := query(ids[:queried/2]); err != nil {
		return err
	}
	var werr error
	var wtook time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for i := 0; i < queried; i += 2 {
			rec := loaded[ids[i]]
			rec.Epoch += 0.5 // a newer element set from another provider: it wins
			rec.MeanMotion += 0.0001
			rec.RevNumber++
			if _, werr = cat.Apply(d.ctx, []catalog.Update{{Source: "leolabs", Rec: rec}}); werr != nil {
				return
			}
		}
		wtook = time.Since(start)
	}()
	passes, reread, rereadPre := 0, 0, 0
	for finished := false; !finished; passes++ { // until the updates are in, then once more
		select {
		case <-done:
			finished = true
		default:
		}
		for _, id := range ids {
			ok, err := read(id)
			if err != nil {
				<-done
				return err
			}
			reread++
			if ok {
				rereadPre++
			}
		}
	}
	if werr != nil {
		return fmt.Errorf("update: %w", werr)
	}
	if err := query(ids[queried/2:]); err != nil {
		return err
	}
	d.p("    %d updates (source leolabs, epoch +0.5 d: each wins the resolved entry) committed one by one in %v while the query's snapshot (ts %d) was open\n",
		updated, wtook.Round(time.Millisecond), snap.TS())
	d.check(queryPre == queried && queryRead == queried, "query over %d objects (50 read before the updates, 50 after): %d/%d versions read are pre-update", queried, queryPre, queryRead)
	d.check(rereadPre == reread && len(bad) == 0, "re-reads at the same snapshot during and after the updates: %d passes, %d/%d versions pre-update %v", passes, rereadPre, reread, bad)

	after, err := cat.Snapshot(d.ctx, 0)
	if err != nil {
		return err
	}
	defer after.Close()
	newer := 0
	for i, id := range ids {
		e, err := after.Get(d.ctx, id)
		if err != nil {
			return err
		}
		if i%2 == 0 && e.Source == "leolabs" && e.Rec.Epoch == loaded[id].Epoch+0.5 && e.CommitTS > snap.TS() {
			newer++
		}
		if i == 0 {
			old, _ := snap.Get(d.ctx, id)
			d.p("    NORAD %d: query snapshot sees %s epoch %.4f (committed ts %d); a snapshot after the updates sees %s epoch %.4f (ts %d)\n",
				id, old.Source, old.Rec.Epoch, old.CommitTS, e.Source, e.Rec.Epoch, e.CommitTS)
		}
	}
	n, err := after.Count(d.ctx)
	if err != nil {
		return err
	}
	d.check(newer == updated && n == objects, "a snapshot after the updates sees %d/%d updated objects (catalog still %d objects)", newer, updated, n)
	st := db.Stats()
	d.p("    mvcc stats: %d commits, %d conflicts, %d open snapshots, watermark %d (the query's snapshot)\n",
		st.Commits, st.Conflicts, st.ActiveSnapshots, st.Watermark)
	return nil
}
