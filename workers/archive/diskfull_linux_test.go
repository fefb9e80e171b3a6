package archive

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, or skips
// the test when this process may not mount (no CAP_SYS_ADMIN, not root,
// a locked-down container). The mount is detached by t.Cleanup.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the file-layer test covers the same scenario", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// The real thing: the archive's data directory is a 128 KiB tmpfs, which
// fills in the 11th or so of 40 batches (~11 KiB each); space returns by
// remounting it larger, as an operator growing the volume would.
func TestWorkerDiskFullTmpfs(t *testing.T) {
	if os.Getenv("MERIDIAN_NO_MOUNT") != "" {
		t.Skip("MERIDIAN_NO_MOUNT set")
	}
	dir := mountTmpfs(t, 128<<10)
	testWorkerDiskFull(t, diskLayer{fs: OSFS{}, dir: dir, free: func(t *testing.T) {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=8m"); err != nil {
			t.Fatalf("grow the tmpfs: %v", err)
		}
	}})
}
