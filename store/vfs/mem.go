package vfs

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

// node is one file's contents: data is what readers see, synced is the
// copy taken at the last Sync, which is all that survives Crash.
type node struct {
	mu     sync.Mutex
	data   []byte
	synced []byte
}

// Mem is an in-memory FS with strict durability: see Crash.
// The zero value is not usable; call NewMem.
type Mem struct {
	mu sync.Mutex
	// live is what the running process sees; durable is the directory state
	// as of the last SyncDir of each directory.
	live    map[string]*node
	durable map[string]*node
}

// NewMem returns an empty in-memory FS.
func NewMem() *Mem {
	return &Mem{live: map[string]*node{}, durable: map[string]*node{}}
}

func clean(name string) string { return path.Clean(strings.ReplaceAll(name, "\\", "/")) }

// Crash simulates a power failure: directory entries not made durable by
// SyncDir are lost, and each surviving file is cut back to the bytes its
// last Sync covered. Handles opened before the crash must not be used again.
func (m *Mem) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := make(map[string]*node, len(m.durable))
	for name, n := range m.durable {
		n.mu.Lock()
		nn := &node{data: append([]byte(nil), n.synced...), synced: append([]byte(nil), n.synced...)}
		n.mu.Unlock()
		live[name] = nn
	}
	m.live = live
	m.durable = make(map[string]*node, len(live))
	for k, v := range live {
		m.durable[k] = v
	}
}

// Create implements FS.
func (m *Mem) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := &node{}
	m.live[name] = n
	return &memFile{n: n, name: name, write: true}, nil
}

// Open implements FS.
func (m *Mem) Open(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.live[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{n: n, name: name}, nil
}

// OpenAppend implements FS.
func (m *Mem) OpenAppend(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.live[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{n: n, name: name, write: true}, nil
}

// Remove implements FS.
func (m *Mem) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.live, name)
	return nil
}

// Rename implements FS.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.live[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(m.live, oldname)
	m.live[newname] = n
	return nil
}

// List implements FS.
func (m *Mem) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name := range m.live {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS; directories are implicit in Mem.
func (m *Mem) MkdirAll(string) error { return nil }

// SyncDir implements FS: the entries of dir become durable as they are now.
func (m *Mem) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.durable {
		if path.Dir(name) == dir {
			if _, ok := m.live[name]; !ok {
				delete(m.durable, name)
			}
		}
	}
	for name, n := range m.live {
		if path.Dir(name) == dir {
			m.durable[name] = n
		}
	}
	return nil
}

var errReadOnly = errors.New("vfs: file not open for writing")

type memFile struct {
	n      *node
	name   string
	off    int64
	write  bool
	closed bool
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	if !f.write {
		return 0, errReadOnly
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

func (f *memFile) Sync() error {
	if f.closed {
		return fs.ErrClosed
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	f.n.synced = append(f.n.synced[:0], f.n.data...)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}
