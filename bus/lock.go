package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataDirLocked is returned when another process holds the data
// directory's lock.
var ErrDataDirLocked = errors.New("data directory is in use by another meridian process")

// DirLock is an exclusive advisory lock (flock) on a directory, held for
// the life of the process or until Release. The kernel drops it when the
// process dies, so a crash never leaves a stale lock behind.
type DirLock struct {
	f *os.File
}

// LockDir creates dir if needed and takes its lock file "meridian.lock".
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bus: create data dir: %w", err)
	}
	path := filepath.Join(dir, "meridian.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bus: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (held by pid %s)", ErrDataDirLocked, dir, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("bus: lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &DirLock{f: f}, nil
}

// Release drops the lock.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	return errors.Join(err, cerr)
}
