package memlimit

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1500MiB": 1500 << 20, "2GiB": 2 << 30, "2gib": 2 << 30, "2000000000": 2_000_000_000,
		"1.5GB": 1_500_000_000, "512 KiB": 512 << 10, "64B": 64,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1GiB", "0", "1e30TiB", "GiB", "nan", "NaN MiB", "0.1", "inf"} {
		if _, err := ParseSize(in); !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) err = %v, want ErrBadSize", in, err)
		}
	}
}

func TestCgroup(t *testing.T) {
	for name, tc := range map[string]struct {
		fs    fstest.MapFS
		limit int64
		ok    bool
	}{
		"v2 limit":    {fstest.MapFS{"memory.max": {Data: []byte("2147483648\n")}}, 2 << 30, true},
		"v2 no limit": {fstest.MapFS{"memory.max": {Data: []byte("max\n")}}, 0, false},
		"v1 limit":    {fstest.MapFS{"memory/memory.limit_in_bytes": {Data: []byte("1073741824\n")}}, 1 << 30, true},
		"v1 no limit": {fstest.MapFS{"memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")}}, 0, false},
		"none":        {fstest.MapFS{}, 0, false},
		"garbage":     {fstest.MapFS{"memory.max": {Data: []byte("lots")}}, 0, false},
	} {
		limit, ok := Cgroup(tc.fs)
		if limit != tc.limit || ok != tc.ok {
			t.Errorf("%s: Cgroup = %d, %v; want %d, %v", name, limit, ok, tc.limit, tc.ok)
		}
	}
}

func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	t.Setenv("GOMEMLIMIT", "")

	if limit, _, err := Apply("1500MiB", fstest.MapFS{}); err != nil || limit != 1500<<20 || debug.SetMemoryLimit(-1) != 1500<<20 {
		t.Fatalf("explicit: %d, %v; runtime limit %d", limit, err, debug.SetMemoryLimit(-1))
	}
	cg := fstest.MapFS{"memory.max": {Data: []byte("2147483648")}}
	c := int64(2 << 30)
	want := int64(float64(c) * Fraction)
	if limit, _, err := Apply("auto", cg); err != nil || limit != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("auto: %d, %v; want %d", limit, err, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if limit, src, err := Apply("auto", fstest.MapFS{}); err != nil || limit != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("auto without a cgroup limit set %d (%s), %v", limit, src, err)
	}
	if limit, _, err := Apply("off", cg); err != nil || limit != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("off set %d, %v", limit, err)
	}
	for _, bad := range []string{"lots", "1B", "10MiB"} {
		if _, _, err := Apply(bad, cg); !errors.Is(err, ErrBadSize) {
			t.Fatalf("Apply(%q): %v, want ErrBadSize", bad, err)
		}
	}
}
