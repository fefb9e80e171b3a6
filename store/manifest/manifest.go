package manifest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/meridian-ops/meridian/store/vfs"
)

const (
	currentName = "CURRENT"
	prefix      = "MANIFEST-"
)

// ErrClosed is returned after Close or after a failed write poisoned the
// Manifest (reopen to recover).
var ErrClosed = errors.New("manifest: closed")

// Options configure a Manifest. The zero value (with Dir set) works.
type Options struct {
	FS  vfs.FS // default vfs.Default
	Dir string
	// MaxSize rewrites the manifest as a checkpoint once the edit log is
	// larger (default 1 MiB).
	MaxSize int64
}

// Manifest is the live edit log. Safe for concurrent use.
type Manifest struct {
	opts Options

	mu    sync.Mutex
	f     vfs.File
	num   uint64 // manifest file number
	size  int64
	state State
	err   error
	// Rewrites counts checkpoints written.
	rewrites int
}

// Open reads CURRENT and the manifest it names (or starts an empty state if
// there is no CURRENT). A clean manifest is appended to; a torn or
// oversized one (or none) is replaced by a checkpoint in a new file, so
// that later edits never follow a torn tail.
func Open(ctx context.Context, opts Options) (*Manifest, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = 1 << 20
	}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("manifest: mkdir: %w", err)
	}
	m := &Manifest{opts: opts}
	cur, err := vfs.ReadAll(opts.FS, filepath.Join(opts.Dir, currentName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.state.NextFileID = 1
	case err != nil:
		return nil, fmt.Errorf("manifest: read CURRENT: %w", err)
	default:
		name := strings.TrimSpace(string(cur))
		num, ok := parseName(name)
		if !ok {
			return nil, fmt.Errorf("%w: CURRENT names %q", ErrCorrupt, name)
		}
		data, err := vfs.ReadAll(opts.FS, filepath.Join(opts.Dir, name))
		if err != nil {
			return nil, fmt.Errorf("manifest: read %s: %w", name, err)
		}
		st, _, torn, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("manifest: %s: %w", name, err)
		}
		m.state, m.num = st, num
		if !torn && int64(len(data)) <= opts.MaxSize {
			// A clean log: keep appending to it.
			f, err := opts.FS.OpenAppend(filepath.Join(opts.Dir, name))
			if err != nil {
				return nil, fmt.Errorf("manifest: reopen %s: %w", name, err)
			}
			m.f, m.size = f, int64(len(data))
			return m, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// New, torn or oversized: start a fresh file so that edits never
	// follow garbage.
	if err := m.checkpointLocked(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(name, prefix), 10, 64)
	return n, err == nil
}

// IsManifestFile reports whether a directory entry is a manifest or
// CURRENT file (so the engine's orphan sweep leaves it alone).
func IsManifestFile(name string) bool {
	_, ok := parseName(name)
	return ok || name == currentName || name == currentName+".tmp"
}

// checkpointLocked writes the state into MANIFEST-(num+1), switches
// CURRENT to it and deletes the old file. Caller holds mu.
func (m *Manifest) checkpointLocked() error {
	fsys, dir := m.opts.FS, m.opts.Dir
	num := m.num + 1
	name := fmt.Sprintf("%s%06d", prefix, num)
	e := Edit{Checkpoint: true, FlushedLSN: m.state.FlushedLSN, NextFileID: m.state.NextFileID}
	for _, lvl := range m.state.Levels {
		e.Add = append(e.Add, lvl...)
	}
	buf := e.Encode(nil)
	f, err := fsys.Create(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("manifest: create: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("manifest: write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("manifest: fsync checkpoint: %w", err)
	}
	tmp := filepath.Join(dir, currentName+".tmp")
	if err := vfs.WriteFile(fsys, tmp, []byte(name+"\n")); err != nil {
		f.Close()
		return fmt.Errorf("manifest: write CURRENT: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, currentName)); err != nil {
		f.Close()
		return fmt.Errorf("manifest: switch CURRENT: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		// CURRENT may or may not point at the new file after a crash;
		// either is a complete state, but this handle is no longer safe.
		f.Close()
		return fmt.Errorf("manifest: sync dir: %w", err)
	}
	if m.f != nil {
		m.f.Close()
	}
	if m.num > 0 {
		_ = fsys.Remove(filepath.Join(dir, fmt.Sprintf("%s%06d", prefix, m.num)))
	}
	m.f, m.num, m.size = f, num, int64(len(buf))
	m.rewrites++
	return nil
}

// Apply appends e, fsyncs it, and only then changes the in-memory state.
// On error the state is unchanged and the Manifest is poisoned.
func (m *Manifest) Apply(ctx context.Context, e Edit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	next := m.state.Clone()
	if err := next.Apply(e); err != nil {
		return err
	}
	if err := next.Check(); err != nil {
		return err
	}
	buf := e.Encode(nil)
	if _, err := m.f.Write(buf); err != nil {
		m.err = fmt.Errorf("%w: write edit: %w", ErrClosed, err)
		return m.err
	}
	if err := m.f.Sync(); err != nil {
		m.err = fmt.Errorf("%w: fsync edit: %w", ErrClosed, err)
		return m.err
	}
	m.state = next
	m.size += int64(len(buf))
	if m.size > m.opts.MaxSize {
		if err := m.checkpointLocked(); err != nil {
			m.err = fmt.Errorf("%w: %w", ErrClosed, err)
			return m.err
		}
	}
	return nil
}

// Checkpoint rewrites the manifest as a single checkpoint edit now.
func (m *Manifest) Checkpoint(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if err := m.checkpointLocked(); err != nil {
		m.err = fmt.Errorf("%w: %w", ErrClosed, err)
		return m.err
	}
	return nil
}

// State returns a copy of the current state.
func (m *Manifest) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Clone()
}

// NewFileID reserves a file id. It is made durable by the next Apply that
// carries a table with it or a larger id (ids are never reused within a
// run; after a crash an unrecorded id may be handed out again, and any file
// with it is an orphan that Open deletes).
func (m *Manifest) NewFileID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.state.NextFileID
	m.state.NextFileID++
	return id
}

// FileName returns the live manifest's base name.
func (m *Manifest) FileName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%s%06d", prefix, m.num)
}

// Size returns the live manifest file's size in bytes.
func (m *Manifest) Size() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.size
}

// Rewrites returns how many checkpoints were written by this Manifest.
func (m *Manifest) Rewrites() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rewrites
}

// Close closes the manifest file.
func (m *Manifest) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return ErrClosed
	}
	err := m.f.Close()
	m.f = nil
	m.err = ErrClosed
	return err
}
