package archive

import (
	"os"

	"github.com/meridian-ops/meridian/store/vfs"
)

// FS is the file system the archive writes through: the OOR's vfs.FS plus
// Truncate, which cutting a torn tail needs. It is a seam for tests (a
// vfs.Faulty with a DiskFull budget models a disk filling up); production
// uses OSFS.
type FS interface {
	vfs.FS
	// Truncate cuts name to size bytes (it needs no free space).
	Truncate(name string, size int64) error
}

// OSFS is the operating system's file system.
type OSFS struct{ vfs.OS }

// Truncate implements FS.
func (OSFS) Truncate(name string, size int64) error { return os.Truncate(name, size) }

// TruncFS adds Truncate, done with package os, to a vfs.FS over the real
// disk (such as a vfs.Faulty wrapping vfs.OS).
type TruncFS struct{ vfs.FS }

// Truncate implements FS.
func (TruncFS) Truncate(name string, size int64) error { return os.Truncate(name, size) }
