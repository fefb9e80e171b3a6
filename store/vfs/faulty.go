package vfs

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Op names an FS operation for fault injection.
type Op int

// The operations Faulty can fail.
const (
	OpCreate Op = iota
	OpOpen
	OpWrite
	OpSync
	OpRead
	OpRemove
	OpRename
	OpList
	OpSyncDir
)

var opNames = [...]string{"create", "open", "write", "sync", "read", "remove", "rename", "list", "syncdir"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// ErrInjected is the error Faulty returns for an injected failure (wrapped
// with the operation and path).
var ErrInjected = errors.New("vfs: injected fault")

// ErrNoSpace is returned by writes once a DiskFull budget is exhausted. It
// wraps syscall.ENOSPC so errors.Is(err, syscall.ENOSPC) holds.
var ErrNoSpace = fmt.Errorf("vfs: no space left on device: %w", syscall.ENOSPC)

// Injector decides whether an operation fails. A non-nil error is returned
// to the caller (for OpWrite, after a short write when ShortWrites is set).
type Injector func(op Op, name string) error

// Faulty wraps an FS and fails the operations its Injector picks.
type Faulty struct {
	Inner  FS
	Inject Injector
	// ShortWrites makes an injected write error write the first half of
	// the buffer before failing, as a real partial write would.
	ShortWrites bool

	mu     sync.Mutex
	budget int64 // remaining bytes; <0 means unlimited
}

// NewFaulty wraps inner. inject may be nil (no faults until set).
func NewFaulty(inner FS, inject Injector) *Faulty {
	return &Faulty{Inner: inner, Inject: inject, budget: -1}
}

// DiskFull limits the bytes all further writes may add; once exhausted,
// writes are cut short and return ErrNoSpace. A negative limit removes it.
func (f *Faulty) DiskFull(limit int64) {
	f.mu.Lock()
	f.budget = limit
	f.mu.Unlock()
}

func (f *Faulty) check(op Op, name string) error {
	f.mu.Lock()
	inj := f.Inject
	f.mu.Unlock()
	if inj == nil {
		return nil
	}
	if err := inj(op, name); err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// SetInjector replaces the injector (nil disables faults).
func (f *Faulty) SetInjector(inj Injector) {
	f.mu.Lock()
	f.Inject = inj
	f.mu.Unlock()
}

// Create implements FS.
func (f *Faulty) Create(name string) (File, error) {
	if err := f.check(OpCreate, name); err != nil {
		return nil, err
	}
	fl, err := f.Inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: fl, fs: f, name: name}, nil
}

// Open implements FS.
func (f *Faulty) Open(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	fl, err := f.Inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: fl, fs: f, name: name}, nil
}

// OpenAppend implements FS (failed as OpOpen).
func (f *Faulty) OpenAppend(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	fl, err := f.Inner.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: fl, fs: f, name: name}, nil
}

// Remove implements FS.
func (f *Faulty) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.Inner.Remove(name)
}

// Rename implements FS.
func (f *Faulty) Rename(o, n string) error {
	if err := f.check(OpRename, n); err != nil {
		return err
	}
	return f.Inner.Rename(o, n)
}

// List implements FS.
func (f *Faulty) List(dir string) ([]string, error) {
	if err := f.check(OpList, dir); err != nil {
		return nil, err
	}
	return f.Inner.List(dir)
}

// MkdirAll implements FS.
func (f *Faulty) MkdirAll(dir string) error { return f.Inner.MkdirAll(dir) }

// SyncDir implements FS.
func (f *Faulty) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return err
	}
	return f.Inner.SyncDir(dir)
}

type faultyFile struct {
	File
	fs   *Faulty
	name string
}

func (ff *faultyFile) Write(p []byte) (int, error) {
	if err := ff.fs.check(OpWrite, ff.name); err != nil {
		if ff.fs.ShortWrites && len(p) > 1 {
			n, _ := ff.File.Write(p[:len(p)/2])
			return n, err
		}
		return 0, err
	}
	ff.fs.mu.Lock()
	if ff.fs.budget >= 0 && int64(len(p)) > ff.fs.budget {
		room := ff.fs.budget
		ff.fs.budget = 0
		ff.fs.mu.Unlock()
		n, _ := ff.File.Write(p[:room])
		return n, fmt.Errorf("write %s: %w", ff.name, ErrNoSpace)
	}
	if ff.fs.budget >= 0 {
		ff.fs.budget -= int64(len(p))
	}
	ff.fs.mu.Unlock()
	return ff.File.Write(p)
}

func (ff *faultyFile) Sync() error {
	if err := ff.fs.check(OpSync, ff.name); err != nil {
		return err
	}
	return ff.File.Sync()
}

func (ff *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	if err := ff.fs.check(OpRead, ff.name); err != nil {
		return 0, err
	}
	return ff.File.ReadAt(p, off)
}

func (ff *faultyFile) Read(p []byte) (int, error) {
	if err := ff.fs.check(OpRead, ff.name); err != nil {
		return 0, err
	}
	return ff.File.Read(p)
}
