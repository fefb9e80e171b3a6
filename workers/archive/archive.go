package archive

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/workers/processor"
)

// Archive is the on-disk frame archive. Append and Sync are for its one
// writer; Query and Count may run concurrently with them.
type Archive struct {
	fs       FS
	dir      string
	readOnly bool

	mu      sync.RWMutex
	spans   []map[string]span // per segment: each source's time range (a sparse index)
	sizes   []int64           // per segment: bytes of complete, fsynced records
	count   uint64
	seen    *processor.Window // recent (satellite_id, sequence): redeliveries
	segs    []vfs.File        // open segments (read handles), index = segment number
	active  vfs.File          // the last segment's append handle; nil when read-only or poisoned
	activeN uint32
	size    int64
	buf     []byte
	failed  error // set by a failed write or fsync
}

// Open opens (creating) the archive in dir and rebuilds its index,
// cutting a torn tail off the last segment. A read-only archive (for the
// CLI while `meridian run` writes) never writes or truncates.
func Open(dir string, readOnly bool) (*Archive, error) { return OpenFS(OSFS{}, dir, readOnly) }

// OpenFS is Open on the file system fsys (nil means OSFS).
func OpenFS(fsys FS, dir string, readOnly bool) (*Archive, error) {
	if fsys == nil {
		fsys = OSFS{}
	}
	if !readOnly {
		if err := fsys.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
	}
	a := &Archive{fs: fsys, dir: dir, readOnly: readOnly, seen: processor.NewWindow(1 << 20)}
	all, err := fsys.List(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // a missing dir (read-only) is an empty archive
		return nil, fmt.Errorf("archive: %w", err)
	}
	var names []string
	for _, n := range all {
		if strings.HasPrefix(n, "seg-") && strings.HasSuffix(n, ".log") {
			names = append(names, filepath.Join(dir, n))
		}
	}
	sort.Slice(names, func(i, j int) bool { return segNum(names[i]) < segNum(names[j]) })
	for i, name := range names {
		if segNum(name) != uint32(i) {
			return nil, fmt.Errorf("archive: segment %s out of sequence (expected %d)", name, i)
		}
		last := i == len(names)-1
		if err := a.load(name, uint32(i), last); err != nil {
			a.Close()
			return nil, err
		}
	}
	if !readOnly {
		if len(a.segs) == 0 {
			if err := a.rotate(); err != nil {
				a.Close()
				return nil, err
			}
		} else {
			a.activeN = uint32(len(a.segs) - 1)
			f, err := fsys.OpenAppend(segName(dir, a.activeN))
			if err != nil {
				a.Close()
				return nil, fmt.Errorf("archive: %w", err)
			}
			a.active = f
			if a.size, err = f.Size(); err != nil {
				a.Close()
				return nil, fmt.Errorf("archive: %w", err)
			}
		}
	}
	return a, nil
}

func segNum(name string) uint32 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "seg-"), ".log"), 10, 32)
	return uint32(n)
}

func segName(dir string, n uint32) string { return filepath.Join(dir, fmt.Sprintf("seg-%08d.log", n)) }

// load indexes one segment. In the last segment a torn or corrupt tail is
// cut (unless read-only); in an earlier one it is an error.
func (a *Archive) load(name string, n uint32, last bool) error {
	f, err := a.fs.Open(name)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	a.segs = append(a.segs, f)
	a.spans, a.sizes = append(a.spans, map[string]span{}), append(a.sizes, 0)
	data, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("archive: read %s: %w", name, err)
	}
	off := 0
	for off < len(data) {
		r, err := decodeRecord(data[off:])
		if err != nil {
			if !last {
				return fmt.Errorf("archive: %s at offset %d: %w", name, off, err)
			}
			if !a.readOnly {
				if terr := a.fs.Truncate(name, int64(off)); terr != nil {
					return fmt.Errorf("archive: cut torn tail of %s: %w", name, terr)
				}
			}
			break
		}
		a.add(n, r.source, r.ts)
		a.seen.Insert(processor.Key{SatelliteID: r.sat, Sequence: r.seq})
		off += r.size
	}
	a.sizes[n] = int64(off)
	return nil
}

// add records one archived frame in the sparse index.
func (a *Archive) add(seg uint32, source []byte, ts uint64) {
	m := a.spans[seg]
	sp, ok := m[string(source)]
	if !ok {
		sp = span{from: ts, to: ts}
	}
	sp.from, sp.to, sp.n = min(sp.from, ts), max(sp.to, ts), sp.n+1
	m[string(source)] = sp
	a.count++
}

// rotate starts a new segment. The old one is closed only once the new one
// is open: a failed rotation (no inode or no space for the new file)
// leaves the archive appending to the old segment, and the next Append
// tries again. (It used to close the old handle first, so a failed create
// left a closed file as the active segment.) Every record in the old
// segment was fsynced by Append already.
func (a *Archive) rotate() error {
	n := uint32(len(a.segs))
	name := segName(a.dir, n)
	w, err := a.fs.Create(name)
	if err != nil {
		return fmt.Errorf("archive: new segment: %w", err)
	}
	r, err := a.fs.Open(name)
	if err != nil {
		w.Close()
		return fmt.Errorf("archive: new segment: %w", err)
	}
	_ = a.fs.SyncDir(a.dir) // the new segment's directory entry must survive a crash
	if a.active != nil {
		a.active.Close()
	}
	a.segs = append(a.segs, r)
	a.spans, a.sizes = append(a.spans, map[string]span{}), append(a.sizes, 0)
	a.active, a.activeN, a.size = w, n, 0
	return nil
}

// Errors returned by Append.
var (
	ErrReadOnly = errors.New("archive: opened read-only")
	ErrFailed   = errors.New("archive: a write failed")
)

// Record is one frame to archive: its key, time and source, and its
// encoding (a schemas.Frame msgpack map, as it came on the bus).
type Record struct {
	TimestampMs uint64
	SatelliteID uint32
	Sequence    uint64
	Source      []byte
	Frame       []byte
}

// Append writes a batch's frames (skipping ones already archived) and
// fsyncs; it returns how many were new. Nothing is acknowledged until it
// returns nil.
func (a *Archive) Append(frames []schemas.Frame) (int, error) {
	recs := make([]Record, len(frames))
	for i := range frames {
		f := &frames[i]
		src := f.SourceID
		if src == "" {
			src = f.StationID
		}
		recs[i] = Record{f.TimestampMs, f.SatelliteID, f.Sequence, []byte(src), schemas.AppendFrame(nil, f)}
	}
	return a.AppendRecords(recs)
}

// AppendRecords is Append for frames still in their encoding (the worker
// passes the bytes it consumed, so nothing is decoded and re-encoded). The
// records' slices are not kept after it returns.
func (a *Archive) AppendRecords(recs []Record) (int, error) {
	if a.readOnly {
		return 0, ErrReadOnly
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failed != nil {
		return 0, a.failed
	}
	a.buf = a.buf[:0]
	var added []*Record
	for i := range recs {
		r := &recs[i]
		k := processor.Key{SatelliteID: r.SatelliteID, Sequence: r.Sequence}
		if a.seen.Contains(k) {
			continue
		}
		a.buf = appendRecord(a.buf, r.TimestampMs, r.SatelliteID, r.Sequence, r.Source, r.Frame)
		added = append(added, r)
		a.seen.Insert(k) // also catches a frame repeated within the batch
	}
	if len(added) == 0 {
		return 0, nil
	}
	if _, err := a.active.Write(a.buf); err != nil {
		// A failed write (ENOSPC above all) may have left part of the
		// batch at the segment's tail. Nothing of the batch is indexed or
		// acknowledged, and every byte before a.size was fsynced, so
		// cutting the file back to a.size restores exactly the archive
		// the index describes: the batch fails (it is redelivered) and
		// the next Append simply tries again — once space returns, it
		// succeeds, with no restart. errors.Is(err, syscall.ENOSPC) holds
		// for a full disk.
		a.seen.DropNewest(len(added))
		werr := fmt.Errorf("archive: %w", err) // err names the file
		if cerr := a.cutTail(); cerr != nil {
			return 0, a.poison(0, errors.Join(werr, cerr))
		}
		return 0, werr
	}
	if err := a.active.Sync(); err != nil {
		return 0, a.poison(len(added), fmt.Errorf("archive: fsync: %w", err))
	}
	a.size += int64(len(a.buf))
	a.sizes[a.activeN] = a.size
	for _, r := range added {
		a.add(a.activeN, r.Source, r.TimestampMs)
	}
	if a.size >= segmentMax {
		if err := a.rotate(); err != nil {
			return len(added), err
		}
	}
	return len(added), nil
}

// cutTail truncates the active segment back to a.size (the end of its
// last fsynced record) and reopens its append handle, so the next write
// lands right after that record. Neither step needs free space.
func (a *Archive) cutTail() error {
	name := segName(a.dir, a.activeN)
	a.active.Close()
	a.active = nil
	if err := a.fs.Truncate(name, a.size); err != nil {
		return fmt.Errorf("archive: cut partial write off %s: %w", name, err)
	}
	f, err := a.fs.OpenAppend(name)
	if err != nil {
		return fmt.Errorf("archive: reopen %s: %w", name, err)
	}
	a.active = f
	return nil
}

// poison forgets the unwritten frames' keys (their redelivery must be
// archived) and refuses further appends: after a failed fsync (or a failed
// write that could not be cut off) the file's tail is unknown, and only a reopen — which keeps exactly the
// complete records on disk — can say what is archived.
func (a *Archive) poison(keys int, err error) error {
	a.seen.DropNewest(keys)
	a.failed = fmt.Errorf("%w (reopen the archive): %w", ErrFailed, err)
	return a.failed
}

// Count is the number of archived frames.
func (a *Archive) Count() uint64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.count
}

// Sources lists the archived sources.
func (a *Archive) Sources() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, m := range a.spans {
		for s := range m {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Query returns a source's frames with from <= timestamp_ms <= to, in
// timestamp order (append order among equal timestamps). It reads only the
// segments whose time range for the source overlaps [from, to].
func (a *Archive) Query(source string, from, to uint64) ([]schemas.Frame, error) {
	type region struct {
		f    vfs.File
		size int64
	}
	var regions []region
	a.mu.RLock()
	for n, m := range a.spans {
		if sp, ok := m[source]; ok && sp.from <= to && sp.to >= from {
			regions = append(regions, region{a.segs[n], a.sizes[n]})
		}
	}
	a.mu.RUnlock()
	type hit struct {
		ts    uint64
		frame schemas.Frame
	}
	var hits []hit
	for _, r := range regions {
		// Only fsynced, complete records lie below size; a concurrent
		// Append writes past it.
		data, err := io.ReadAll(io.NewSectionReader(r.f, 0, r.size))
		if err != nil {
			return nil, fmt.Errorf("archive: read: %w", err)
		}
		for off := 0; off < len(data); {
			rec, err := decodeRecord(data[off:])
			if err != nil {
				return nil, fmt.Errorf("archive: at offset %d: %w", off, err)
			}
			off += rec.size
			if rec.ts < from || rec.ts > to || string(rec.source) != source {
				continue
			}
			var f schemas.Frame
			if err := schemas.Decode(rec.frame, &f); err != nil {
				return nil, fmt.Errorf("archive: %w", err)
			}
			hits = append(hits, hit{rec.ts, f})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].ts < hits[j].ts })
	out := make([]schemas.Frame, len(hits))
	for i := range hits {
		out[i] = hits[i].frame
	}
	return out, nil
}

// Close closes the segment files.
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if a.active != nil {
		errs = append(errs, a.active.Sync(), a.active.Close())
		a.active = nil
	}
	for _, f := range a.segs {
		errs = append(errs, f.Close())
	}
	a.segs = nil
	return errors.Join(errs...)
}
