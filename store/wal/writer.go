package wal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-ops/meridian/store/vfs"
)

// SyncPolicy selects when appended records are fsynced; see the package
// documentation for each policy's loss window. The zero value is SyncAlways.
type SyncPolicy int

const (
	// SyncAlways fsyncs before Sync returns; concurrent callers share fsyncs.
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs from a background goroutine every Interval.
	SyncInterval
	// SyncNone never fsyncs on its own (only on rotation, SyncNow and Close).
	SyncNone
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Options configure a Writer. The zero value (with FS and Dir set) works.
type Options struct {
	FS  vfs.FS // default vfs.Default
	Dir string
	// Sync is the fsync policy (default SyncAlways).
	Sync SyncPolicy
	// Interval is the SyncInterval period (default 5 ms).
	Interval time.Duration
	// SegmentSize rotates to a new segment once the current one is larger
	// (default 64 MiB).
	SegmentSize int64
	// BufferSize is how many bytes are gathered in memory before one
	// write(2) (default 256 KiB).
	BufferSize int
}

func (o *Options) defaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Millisecond
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.BufferSize <= 0 {
		o.BufferSize = 256 << 10
	}
}

// Writer appends records to the live segment. Append, Sync and Rotate are
// safe for concurrent use; LSNs are assigned in Append order.
type Writer struct {
	opts Options

	// syncMu serializes fsyncs and segment switches; taken before mu.
	syncMu sync.Mutex

	mu       sync.Mutex
	buf      []byte
	f        vfs.File
	segSize  int64
	nextLSN  uint64
	segments []segment // oldest first; the last is live
	err      error     // sticky

	synced  atomic.Uint64 // highest LSN known durable
	written uint64        // highest LSN handed to the OS (under mu)

	// SyncInterval: waiters block on tick until the next background sync.
	tickMu sync.Mutex
	tick   chan struct{}
	stop   chan struct{}
	done   chan struct{}

	syncs atomic.Int64
	bytes atomic.Int64
}

// Open starts a Writer whose first record gets LSN next. It creates a new
// segment named next (replacing an existing one, which Replay found empty
// or torn) and remembers the older segments for Truncate. Call Replay first.
func Open(ctx context.Context, opts Options, next uint64) (*Writer, error) {
	opts.defaults()
	if next == 0 {
		next = 1
	}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("wal: mkdir: %w", err)
	}
	segs, err := listSegments(opts.FS, opts.Dir)
	if err != nil {
		return nil, err
	}
	w := &Writer{opts: opts, nextLSN: next, written: next - 1, tick: make(chan struct{})}
	w.synced.Store(next - 1)
	for _, s := range segs {
		if s.first < next {
			w.segments = append(w.segments, s)
		}
	}
	if err := w.newSegment(); err != nil {
		return nil, err
	}
	if opts.Sync == SyncInterval {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.syncLoop()
	}
	return w, ctx.Err()
}

// newSegment creates the segment for nextLSN and makes its directory entry
// durable. Caller holds mu (or has exclusive access).
func (w *Writer) newSegment() error {
	s := segment{first: w.nextLSN, name: segmentName(w.opts.Dir, w.nextLSN)}
	f, err := w.opts.FS.Create(s.name)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	if err := w.opts.FS.SyncDir(w.opts.Dir); err != nil {
		f.Close()
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	w.f, w.segSize = f, 0
	if n := len(w.segments); n > 0 && w.segments[n-1].first == s.first {
		w.segments[n-1] = s // Create replaced that (empty) file
	} else {
		w.segments = append(w.segments, s)
	}
	return nil
}

// Append frames payload as the next record and returns its LSN. The record
// is buffered; use Sync (or the policy's background sync) for durability.
func (w *Writer) Append(payload []byte) (uint64, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	lsn := w.nextLSN
	w.nextLSN++
	w.buf = AppendRecord(w.buf, lsn, payload)
	var err error
	if len(w.buf) >= w.opts.BufferSize {
		err = w.flushLocked()
	}
	full := w.segSize+int64(len(w.buf)) >= w.opts.SegmentSize
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if full {
		if err := w.rotate(false); err != nil {
			return lsn, err
		}
	}
	return lsn, nil
}

// flushLocked hands the buffer to the OS. Caller holds mu.
func (w *Writer) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf)
	w.segSize += int64(n)
	w.bytes.Add(int64(n))
	if err != nil {
		return w.poison(fmt.Errorf("wal: write: %w", err))
	}
	w.buf = w.buf[:0]
	w.written = w.nextLSN - 1
	return nil
}

// poison records a sticky error. Caller holds mu.
func (w *Writer) poison(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return w.err
}

// LastLSN returns the LSN of the most recently appended record.
func (w *Writer) LastLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextLSN - 1
}

// SyncedLSN returns the highest LSN known to be durable.
func (w *Writer) SyncedLSN() uint64 { return w.synced.Load() }

// Sync makes lsn durable according to the policy: SyncAlways fsyncs now
// (sharing the fsync with concurrent callers); SyncInterval waits for the
// next background fsync; SyncNone returns at once.
func (w *Writer) Sync(ctx context.Context, lsn uint64) error {
	switch w.opts.Sync {
	case SyncNone:
		return nil
	case SyncInterval:
		return w.waitTick(ctx, lsn)
	}
	return w.SyncNow(ctx, lsn)
}

// SyncNow fsyncs until lsn is durable, whatever the policy. Concurrent
// callers queue on one lock; whoever gets it syncs everything appended so
// far, so the others usually find their LSN already covered.
func (w *Writer) SyncNow(ctx context.Context, lsn uint64) error {
	if w.synced.Load() >= lsn {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced.Load() >= lsn {
		return nil
	}
	return w.syncLocked()
}

// syncLocked writes the buffer and fsyncs the live segment. Caller holds
// syncMu (not mu).
func (w *Writer) syncLocked() error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if err := w.flushLocked(); err != nil {
		w.mu.Unlock()
		return err
	}
	f, target := w.f, w.written
	w.mu.Unlock()
	if w.synced.Load() >= target {
		return nil
	}
	if err := f.Sync(); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.poison(fmt.Errorf("wal: fsync: %w", err))
	}
	w.syncs.Add(1)
	w.synced.Store(target)
	return nil
}

func (w *Writer) waitTick(ctx context.Context, lsn uint64) error {
	for w.synced.Load() < lsn {
		w.tickMu.Lock()
		ch := w.tick
		w.tickMu.Unlock()
		if w.synced.Load() >= lsn {
			break
		}
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *Writer) syncLoop() {
	defer close(w.done)
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.syncMu.Lock()
		_ = w.syncLocked() // a failure poisons the writer; waiters see it
		w.syncMu.Unlock()
		w.tickMu.Lock()
		close(w.tick)
		w.tick = make(chan struct{})
		w.tickMu.Unlock()
	}
}

// Rotate fsyncs and closes the live segment and starts a new one at the
// next LSN, so that everything appended so far lives in older segments
// that Truncate can delete once flushed. It returns the last LSN of the
// closed segment.
func (w *Writer) Rotate() (uint64, error) {
	w.mu.Lock()
	last := w.nextLSN - 1
	w.mu.Unlock()
	return last, w.rotate(true)
}

func (w *Writer) rotate(force bool) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if !force && w.segSize+int64(len(w.buf)) < w.opts.SegmentSize {
		return nil
	}
	if w.segSize == 0 && len(w.buf) == 0 {
		// The live segment is empty and already starts at nextLSN; a new
		// one would have the same name.
		return nil
	}
	if err := w.flushLocked(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return w.poison(fmt.Errorf("wal: fsync: %w", err))
	}
	w.syncs.Add(1)
	w.synced.Store(w.written)
	if err := w.f.Close(); err != nil {
		return w.poison(fmt.Errorf("wal: close segment: %w", err))
	}
	if err := w.newSegment(); err != nil {
		return w.poison(err)
	}
	return nil
}

// Truncate deletes the segments whose records all have LSN <= flushed,
// never the live one. A removal lost to a crash is harmless: replay skips
// records at or below the flushed LSN.
func (w *Writer) Truncate(flushed uint64) (removed int, err error) {
	w.mu.Lock()
	var victims []segment
	for len(w.segments) > 1 && w.segments[1].first <= flushed+1 {
		victims = append(victims, w.segments[0])
		w.segments = w.segments[1:]
	}
	w.mu.Unlock()
	for _, s := range victims {
		if e := w.opts.FS.Remove(s.name); e != nil && err == nil {
			err = fmt.Errorf("wal: remove %s: %w", s.name, e)
		}
	}
	return len(victims), err
}

// Segments returns the first LSN of each segment, oldest first.
func (w *Writer) Segments() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]uint64, len(w.segments))
	for i, s := range w.segments {
		out[i] = s.first
	}
	return out
}

// Stats are cumulative counters.
type Stats struct {
	Syncs        int64 // fsyncs of segment files
	BytesWritten int64
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Syncs: w.syncs.Load(), BytesWritten: w.bytes.Load()}
}

// Close writes and fsyncs what is buffered (whatever the policy) and closes
// the segment. Further calls return ErrClosed.
func (w *Writer) Close() error {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if errors.Is(w.err, ErrClosed) && w.f == nil {
		return ErrClosed
	}
	var err error
	if w.err == nil {
		if err = w.flushLocked(); err == nil {
			if err = w.f.Sync(); err == nil {
				w.synced.Store(w.written)
			}
		}
	} else {
		err = w.err
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	w.f = nil
	w.err = ErrClosed
	// Wake any SyncInterval waiters so they observe ErrClosed.
	w.tickMu.Lock()
	close(w.tick)
	w.tick = make(chan struct{})
	w.tickMu.Unlock()
	return err
}
