// Package memlimit gives the process a soft memory limit (the Go
// runtime's, as GOMEMLIMIT sets it) from a flag or from its container's
// cgroup limit. Meridian's heap grows with the telemetry rate — the
// embedded NATS server caches every message block it touched in the last
// 10 s — and the collector lets the heap reach twice its live size, so
// under overload a container without a soft limit is killed for memory
// rather than collecting harder (ops/perf/soak.md, run 7).
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// ErrBadSize is returned for a --memory-limit that is not "auto", "off"
// or a size.
var ErrBadSize = errors.New("memory limit: want auto, off, or a size such as 1500MiB, 2GiB or 2000000000")

// Fraction of the container's limit used as the soft limit under "auto":
// the rest is for what the Go runtime does not count (thread stacks,
// fragmentation) and the kernel's page cache of the data files.
const Fraction = 0.85

// ParseSize reads a byte count with an optional binary or decimal suffix:
// B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (case-insensitive).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	lower, mult := strings.ToLower(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			lower, mult = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(lower, 64)
	if err != nil || math.IsNaN(v) || v*mult < 1 || math.IsInf(v, 0) || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%w (got %q)", ErrBadSize, s)
	}
	return int64(v * mult), nil
}

// Cgroup returns the memory limit of the cgroup the process runs in
// (cgroup v2 memory.max, else v1 memory.limit_in_bytes), read from fsys
// rooted at /sys/fs/cgroup; ok is false when there is none ("max", an
// absurdly large v1 value, or no file).
func Cgroup(fsys fs.FS) (limit int64, ok bool) {
	for _, name := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1 reports "no limit" as a huge number
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// MinLimit is the smallest size Apply accepts.
const MinLimit = 64 << 20

// Apply sets the soft limit from setting: "off" leaves the runtime alone,
// a size (at least MinLimit) sets it, and "auto" (or empty) sets Fraction
// of the cgroup's limit unless GOMEMLIMIT already gave one. It returns the
// limit set (0: none) and where it came from, for the log.
func Apply(setting string, cgroup fs.FS) (limit int64, source string, err error) {
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case "off":
		return 0, "off", nil
	case "", "auto":
		if os.Getenv("GOMEMLIMIT") != "" {
			return debug.SetMemoryLimit(-1), "GOMEMLIMIT", nil
		}
		c, ok := Cgroup(cgroup)
		if !ok {
			return 0, "none (no cgroup memory limit)", nil
		}
		limit = int64(float64(c) * Fraction)
		debug.SetMemoryLimit(limit)
		return limit, fmt.Sprintf("%.0f%% of the cgroup's %d bytes", Fraction*100, c), nil
	}
	limit, err = ParseSize(setting)
	if err != nil {
		return 0, "", err
	}
	if limit < MinLimit { // the collector would run without pause
		return 0, "", fmt.Errorf("%w: %d bytes is below the %d MiB a process needs (got %q)", ErrBadSize, limit, MinLimit>>20, setting)
	}
	debug.SetMemoryLimit(limit)
	return limit, "--memory-limit", nil
}
