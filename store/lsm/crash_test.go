package lsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-ops/meridian/store/vfs"
)

// The real crash test re-executes the test binary as a child writer; these
// environment variables switch TestMain into child mode.
const (
	envCrashDir   = "MERIDIAN_LSM_CRASH_DIR"
	envCrashStart = "MERIDIAN_LSM_CRASH_START"
	crashKeys     = 3000
	crashPerBatch = 50
)

func crashOptions() *Options {
	return &Options{MemtableSize: 64 << 10, L0CompactionTrigger: 2, TargetFileSize: 32 << 10, LevelBaseSize: 128 << 10}
}

// batchKeys returns the keys batch b writes.
func batchKeys(b uint64) []uint32 {
	ks := make([]uint32, crashPerBatch)
	for i := range ks {
		ks[i] = uint32((b*31 + uint64(i)*17) % crashKeys)
	}
	return ks
}

func crashValue(b uint64, k uint32) []byte {
	v := make([]byte, 82)
	binary.BigEndian.PutUint64(v, b)
	binary.BigEndian.PutUint32(v[8:], k)
	for i := 12; i < len(v); i++ {
		v[i] = byte(b) ^ byte(k) ^ byte(i)
	}
	return v
}

func parseCrashValue(v []byte, k uint32) (uint64, bool) {
	if len(v) != 82 {
		return 0, false
	}
	b := binary.BigEndian.Uint64(v)
	return b, string(v) == string(crashValue(b, k))
}

// crashChild runs the child writer when the environment says so: it
// applies batches with fsync per batch (SyncAlways) and prints "ack N"
// after each Apply returns, until it is killed.
func crashChild() bool {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		return false
	}
	start, _ := strconv.ParseUint(os.Getenv(envCrashStart), 10, 64)
	db, err := Open(ctx, dir, crashOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	for b := start; ; b++ {
		var batch Batch
		for _, k := range batchKeys(b) {
			batch.Put(key(k), crashValue(b, k))
		}
		if _, err := db.Apply(ctx, &batch); err != nil {
			fmt.Fprintln(os.Stderr, "child apply:", err)
			os.Exit(3)
		}
		fmt.Printf("ack %d\n", b) // os.Stdout is unbuffered: one write(2)
	}
}

// TestRealCrashSIGKILL starts a child process that writes with an fsync
// per batch, SIGKILLs it at a random moment, reopens the DB and checks
// that every acknowledged batch is there (each key holds its last
// acknowledged value or a newer one), that nothing is malformed, and that
// Check passes. Repeats for a bounded time.
func TestRealCrashSIGKILL(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip("no executable:", err)
	}
	dir := t.TempDir()
	budget := 4 * time.Second
	if testing.Short() {
		budget = 2 * time.Second
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	lastAcked := map[uint32]uint64{} // key -> highest acknowledged batch that wrote it
	hasAck := map[uint32]bool{}
	next := uint64(1)
	deadline := time.Now().Add(budget)
	runs, totalAcks := 0, 0
	for runs < 3 || time.Now().Before(deadline) {
		if runs >= 200 {
			break
		}
		runs++
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStart+"="+strconv.FormatUint(next, 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + r.IntN(60) // acknowledgements before the kill
		sc := bufio.NewScanner(out)
		var acked []uint64
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if b, ok := strings.CutPrefix(line, "ack "); ok {
				n, _ := strconv.ParseUint(b, 10, 64)
				acked = append(acked, n)
			}
			if !killed && len(acked) >= killAfter {
				// A random extra moment inside the next batch's write path.
				spin := time.Duration(r.IntN(2000)) * time.Microsecond
				for t0 := time.Now(); time.Since(t0) < spin; {
				}
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: child did not die by SIGKILL: %v\n%s", runs, err, stderr.String())
		}
		for _, b := range acked {
			for _, k := range batchKeys(b) {
				if !hasAck[k] || b > lastAcked[k] {
					lastAcked[k], hasAck[k] = b, true
				}
			}
		}
		totalAcks += len(acked)

		db, err := Open(ctx, dir, crashOptions())
		if err != nil {
			t.Fatalf("run %d: reopen after SIGKILL: %v", runs, err)
		}
		maxSeen := next - 1
		for k := uint32(0); k < crashKeys; k++ {
			v, err := db.Get(ctx, key(k))
			if errors.Is(err, ErrNotFound) {
				if hasAck[k] {
					t.Fatalf("run %d: key %d lost (acknowledged in batch %d)", runs, k, lastAcked[k])
				}
				continue
			}
			if err != nil {
				t.Fatalf("run %d: get %d: %v", runs, k, err)
			}
			b, ok := parseCrashValue(v, k)
			if !ok {
				t.Fatalf("run %d: key %d holds a malformed value", runs, k)
			}
			if hasAck[k] && b < lastAcked[k] {
				t.Fatalf("run %d: key %d holds batch %d, acknowledged batch %d", runs, k, b, lastAcked[k])
			}
			maxSeen = max(maxSeen, b)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("run %d: Check after SIGKILL: %v", runs, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if len(acked) > 0 {
			maxSeen = max(maxSeen, acked[len(acked)-1])
		}
		next = maxSeen + 1
	}
	t.Logf("%d SIGKILLed runs, %d acknowledged batches of %d records, all present", runs, totalAcks, crashPerBatch)
	_ = vfs.Default
}
