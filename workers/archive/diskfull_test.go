package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/vfs"
)

// Disk-full tests. The archive writes through FS; a vfs.Faulty over the
// real disk with a DiskFull byte budget is the size-limited file layer
// (writes past the budget are cut short and fail with ENOSPC, as on a full
// file system). diskfull_linux_test.go runs the worker scenario on a real
// size-limited tmpfs as well, where mounting is permitted.

// bigFrames is frames with payload bytes of payload each (so that a small
// quota fills after a few batches).
func bigFrames(src string, sat uint32, from, n uint64, payload int) []schemas.Frame {
	out := frames(src, sat, from, n)
	for i := range out {
		p := make([]byte, payload)
		for j := range p {
			p[j] = byte(out[i].Sequence) + byte(j)
		}
		out[i].Payload = p
	}
	return out
}

// recordBytes is how many bytes Append writes for fs (all new).
func recordBytes(fs []schemas.Frame) int64 {
	var n int64
	for i := range fs {
		f := &fs[i]
		n += int64(len(appendRecord(nil, f.TimestampMs, f.SatelliteID, f.Sequence, []byte(f.SourceID), schemas.AppendFrame(nil, f))))
	}
	return n
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

type frameKey struct {
	sat uint32
	seq uint64
}

// checkSegments reads every segment in dir byte by byte: each record must
// decode with a good CRC, to the very end of the file (no torn or partial
// record left behind), and carry the frame its header names. It returns
// how often each frame is archived.
func checkSegments(t *testing.T, dir string) map[frameKey]int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	sort.Strings(names)
	seen := map[frameKey]int{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); {
			r, err := decodeRecord(data[off:])
			if err != nil {
				t.Fatalf("%s: bad record at offset %d of %d: %v", filepath.Base(name), off, len(data), err)
			}
			var f schemas.Frame
			if err := schemas.Decode(r.frame, &f); err != nil || f.Sequence != r.seq || f.SatelliteID != r.sat {
				t.Fatalf("%s at %d: frame %+v does not match header (sat %d seq %d): %v", filepath.Base(name), off, f, r.sat, r.seq, err)
			}
			seen[frameKey{r.sat, r.seq}]++
			off += r.size
		}
	}
	return seen
}

// exactlyOnce fails unless seen holds sequences 1..total of satellite sat
// once each.
func exactlyOnce(t *testing.T, seen map[frameKey]int, sat uint32, total int) {
	t.Helper()
	if len(seen) != total {
		t.Fatalf("%d distinct frames on disk, want %d", len(seen), total)
	}
	for seq := 1; seq <= total; seq++ {
		if n := seen[frameKey{sat, uint64(seq)}]; n != 1 {
			t.Fatalf("frame %d archived %d times, want once", seq, n)
		}
	}
}

// A write that runs out of space fails with ENOSPC, leaves nothing of the
// batch on disk or in the index, and the archive keeps working: the same
// batch goes in once space returns, without a reopen.
func TestAppendDiskFullCutsPartialWrite(t *testing.T) {
	dir := t.TempDir()
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	a, err := OpenFS(TruncFS{ff}, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	first, second := bigFrames("gs-a", 1, 1, 10, 200), bigFrames("gs-a", 1, 11, 10, 200)
	if _, err := a.Append(first); err != nil {
		t.Fatal(err)
	}
	seg := segName(dir, 0)
	st, _ := os.Stat(seg)
	good := st.Size()

	ff.DiskFull(recordBytes(second) / 2) // room for half the batch: a partial write
	n, err := a.Append(second)
	if n != 0 || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrFailed) {
		t.Fatalf("append on a full disk: %d, %v; want 0 and an ENOSPC error that does not poison", n, err)
	}
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error does not say the disk is full: %v", err)
	}
	if st, _ := os.Stat(seg); st.Size() != good {
		t.Fatalf("segment is %d bytes after the failed write, want the %d of its complete records", st.Size(), good)
	}
	if a.Count() != 10 {
		t.Fatalf("count %d after a failed append, want 10", a.Count())
	}
	if _, err := a.Append(second); !errors.Is(err, syscall.ENOSPC) { // still full: still a clear error
		t.Fatalf("second try on a full disk: %v", err)
	}

	ff.DiskFull(-1) // space returns
	if n, err := a.Append(second); n != 10 || err != nil {
		t.Fatalf("append after space returned: %d, %v", n, err)
	}
	if got, err := a.Query("gs-a", 0, 1<<62); err != nil || len(got) != 20 || got[19].Sequence != 20 {
		t.Fatalf("query: %d frames, %v", len(got), err)
	}
	a.Close()
	exactlyOnce(t, checkSegments(t, dir), 1, 20)
	if a, err = OpenFS(nil, dir, false); err != nil || a.Count() != 20 {
		t.Fatalf("reopened: %v", err)
	}
}

// A failed fsync (which is also where some file systems report a full
// disk) poisons the archive: every later Append refuses with ErrFailed
// until a reopen, which keeps the records on disk, and the redelivered
// batch is then archived once.
func TestAppendFsyncFailurePoisonsUntilReopen(t *testing.T) {
	dir := t.TempDir()
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	a, err := OpenFS(TruncFS{ff}, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(frames("gs-a", 1, 1, 5)); err != nil {
		t.Fatal(err)
	}
	ff.SetInjector(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync {
			return syscall.ENOSPC
		}
		return nil
	})
	_, err = a.Append(frames("gs-a", 1, 6, 5))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	ff.SetInjector(nil)
	if _, err := a.Append(frames("gs-a", 1, 11, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("a poisoned archive accepted an append: %v", err)
	}
	a.Close()
	b, err := OpenFS(TruncFS{ff}, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The batch whose fsync failed was written, so the reopen finds it; its
	// redelivery adds nothing.
	if n, err := b.Append(frames("gs-a", 1, 6, 5)); err != nil || n != 0 || b.Count() != 10 {
		t.Fatalf("redelivery after reopen: added %d, count %d, %v", n, b.Count(), err)
	}
	exactlyOnce(t, checkSegments(t, dir), 1, 10)
}

// A rotation that cannot create the next segment (no inode or no space
// for it) keeps the archive appending to the current one and retries on
// the next Append. Before the fix it closed the current segment first,
// so the next write hit a closed file and poisoned the archive.
func TestRotateFailureKeepsAppending(t *testing.T) {
	defer func(old int64) { segmentMax = old }(segmentMax)
	segmentMax = 1024
	dir := t.TempDir()
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	a, err := OpenFS(TruncFS{ff}, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	ff.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate {
			return syscall.ENOSPC
		}
		return nil
	})
	seq := uint64(1)
	for i := 0; i < 3; i++ { // each batch overfills the segment and fails to rotate
		n, err := a.Append(bigFrames("gs-a", 1, seq, 4, 300))
		if n != 4 || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrFailed) {
			t.Fatalf("batch %d: %d, %v; want the batch written and the rotation's ENOSPC reported", i, n, err)
		}
		seq += 4
	}
	ff.SetInjector(nil)
	if n, err := a.Append(bigFrames("gs-a", 1, seq, 4, 300)); n != 4 || err != nil {
		t.Fatalf("after the inode came back: %d, %v", n, err)
	}
	a.Close()
	if names, _ := filepath.Glob(filepath.Join(dir, "seg-*.log")); len(names) != 2 {
		t.Fatalf("segments %v, want 2", names)
	}
	exactlyOnce(t, checkSegments(t, dir), 1, 16)
}

// diskLayer is a data directory whose file system can be made full and
// then given space again.
type diskLayer struct {
	fs   FS
	dir  string
	free func(t *testing.T) // space returns
}

const (
	dfBatches = 40
	dfPerMsg  = 20
	dfPayload = 512
)

func dfBatch(i int) []schemas.Frame {
	return bigFrames("gs-df", 7, uint64(i*dfPerMsg+1), dfPerMsg, dfPayload)
}

// The file-layer version: a byte budget that runs out in the middle of
// the 11th batch.
func TestWorkerDiskFullFileLayer(t *testing.T) {
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	var budget int64
	for i := 0; i < 10; i++ {
		budget += recordBytes(dfBatch(i))
	}
	ff.DiskFull(budget + recordBytes(dfBatch(10))/2)
	testWorkerDiskFull(t, diskLayer{fs: TruncFS{ff}, dir: t.TempDir(), free: func(*testing.T) { ff.DiskFull(-1) }})
}

// testWorkerDiskFull streams dfBatches messages to TLM_PROCESSED through the
// archive worker while its disk fills up. While full: the worker counts
// no_space errors, acks exactly the batches it archived (the rest stay
// pending for redelivery), and keeps running. Once space returns the same
// worker, with no restart, archives the rest; in the end every frame is
// on disk exactly once and every byte of every segment is a good record.
func testWorkerDiskFull(t *testing.T, d diskLayer) {
	b := bustest.New(t)
	js, err := jetstream.New(b.Conn)
	if err != nil {
		t.Fatal(err)
	}
	noSpace := writeErrors.WithLabelValues("no_space")
	before := counterValue(noSpace)
	w, err := NewWorker(b.Conn, Config{Dir: d.dir, FS: d.fs, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	for i := 0; i < dfBatches; i++ {
		msg := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-df", Frames: dfBatch(i)})
		if _, err := js.Publish(ctx, "tlm.processed.gs-df", msg); err != nil {
			t.Fatal(err)
		}
	}
	total := dfBatches * dfPerMsg
	unacked := func() int {
		cons, err := js.Consumer(ctx, schemas.StreamProcessed, "archive")
		if err != nil {
			return -1
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return -1
		}
		return info.NumAckPending + int(info.NumPending)
	}

	// The disk fills: redeliveries keep failing, and what is acked is
	// exactly what is archived (whole batches).
	var pend int
	bustest.Eventually(t, 30*time.Second, func() bool {
		pend = unacked()
		return counterValue(noSpace)-before >= 3 && pend > 0 && int(w.Archive().Count()) == (dfBatches-pend)*dfPerMsg
	}, "disk full: %v no_space errors, %d batches unacked, %d frames archived",
		counterValue(noSpace)-before, pend, w.Archive().Count())
	full := w.Archive().Count()
	if full == 0 || int(full) >= total {
		t.Fatalf("the disk filled after %d of %d frames; the test wants it to fill mid-stream", full, total)
	}
	select {
	case err := <-done:
		stopped = true
		t.Fatalf("worker stopped on a full disk: %v", err)
	default:
	}
	t.Logf("disk full after %d of %d frames; %d batches held back for redelivery", full, total, pend)

	d.free(t)
	bustest.Eventually(t, 30*time.Second, func() bool {
		return int(w.Archive().Count()) == total && unacked() == 0
	}, "after space returned: %d of %d frames archived, %d batches unacked", w.Archive().Count(), total, unacked())
	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	exactlyOnce(t, checkSegments(t, d.dir), 7, total)
	a, err := OpenFS(d.fs, d.dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if int(a.Count()) != total {
		t.Fatalf("reopened archive holds %d frames, want %d", a.Count(), total)
	}
}

// A failed fsync poisons the archive: the worker stops with an error
// saying so (the process exits and its supervisor restarts it); the
// restarted worker reopens the archive and ends with every frame once.
func TestWorkerFsyncFailureStopsAndRestartRecovers(t *testing.T) {
	b := bustest.New(t)
	js, _ := jetstream.New(b.Conn)
	dir := t.TempDir()
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	run := func() (*Worker, context.CancelFunc, chan error) {
		w, err := NewWorker(b.Conn, Config{Dir: dir, FS: TruncFS{ff}, Logger: bustest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		return w, cancel, done
	}
	first, cancel, done := run()
	defer cancel()
	const n, per = 20, 10
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			msg := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-a", Frames: frames("gs-a", 3, uint64(i*per+1), per)})
			if _, err := js.Publish(context.Background(), "tlm.processed.gs-a", msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first batches are archived; then every segment fsync fails.
	publish(0, 5)
	bustest.Eventually(t, 30*time.Second, func() bool { return first.Archive().Count() == 5*per }, "first batches not archived")
	ff.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasPrefix(filepath.Base(name), "seg-") {
			return syscall.ENOSPC
		}
		return nil
	})
	publish(5, n)
	select {
	case err := <-done:
		if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("worker stopped with %v; want ErrFailed wrapping ENOSPC", err)
		}
		t.Logf("worker stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("a poisoned archive worker kept running")
	}

	ff.SetInjector(nil) // the disk is fixed; the supervisor restarts the worker
	w, cancel2, done2 := run()
	bustest.Eventually(t, 30*time.Second, func() bool { return w.Archive().Count() == n*per },
		"restarted worker archived %d of %d", w.Archive().Count(), n*per)
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, checkSegments(t, dir), 3, n*per)
}

// Group commit: batches waiting together are archived with one fsync, so
// a backlog of 50 processed messages takes far fewer than 50 fsyncs, and
// every frame is archived once.
func TestWorkerGroupCommit(t *testing.T) {
	b := bustest.New(t)
	js, _ := jetstream.New(b.Conn)
	const n, per = 50, 10
	for i := 0; i < n; i++ {
		msg := schemas.AppendFrameBatch(nil, &schemas.FrameBatch{StationID: "gs-a", Frames: frames("gs-a", 3, uint64(i*per+1), per)})
		if _, err := js.Publish(context.Background(), "tlm.processed.gs-a", msg); err != nil {
			t.Fatal(err)
		}
	}
	ff := vfs.NewFaulty(vfs.OS{}, nil)
	var syncs atomic.Int32
	ff.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasPrefix(filepath.Base(name), "seg-") {
			syncs.Add(1)
		}
		return nil
	})
	w, err := NewWorker(b.Conn, Config{Dir: t.TempDir(), FS: TruncFS{ff}, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	bustest.Eventually(t, 30*time.Second, func() bool { return w.Archive().Count() == n*per },
		"archived %d of %d", w.Archive().Count(), n*per)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := syncs.Load(); s == 0 || s > n/2 {
		t.Fatalf("%d segment fsyncs for a backlog of %d messages; want a few (group commit)", s, n)
	}
}
