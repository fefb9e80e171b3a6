package bloom

import (
	"encoding/binary"
	"testing"
)

func key(i uint32) []byte { return binary.BigEndian.AppendUint32(nil, i) }

func TestNoFalseNegativesAndLowFPRate(t *testing.T) {
	var b Builder
	const n = 20000
	for i := uint32(0); i < n; i++ {
		b.Add(key(i * 2))
	}
	f, err := Decode(b.Finish(nil, 10))
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < n; i++ {
		if !f.MayContainKey(key(i * 2)) {
			t.Fatalf("false negative for %d", i*2)
		}
	}
	fp := 0
	for i := uint32(0); i < n; i++ {
		if f.MayContainKey(key(i*2 + 1)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.02 {
		t.Fatalf("false-positive rate %.4f > 2%%", rate)
	}
}

func TestHashIsStable(t *testing.T) {
	// Golden value: a change would invalidate every filter on disk.
	if got := Hash(key(40000)); got != 0xcce6bc666b6e9ed0 {
		t.Fatalf("hash(40000) = %#x; the on-disk filter hash changed", got)
	}
}

func FuzzDecode(f *testing.F) {
	var b Builder
	b.Add([]byte("a"))
	f.Add(b.Finish(nil, 10), []byte("a"))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 31}, []byte("x"))
	f.Fuzz(func(t *testing.T, data, k []byte) {
		flt, err := Decode(data)
		if err != nil {
			return
		}
		flt.MayContainKey(k) // must not panic
	})
}

func BenchmarkMayContain(b *testing.B) {
	var bl Builder
	for i := uint32(0); i < 100000; i++ {
		bl.Add(key(i))
	}
	f, _ := Decode(bl.Finish(nil, 10))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.MayContainKey(key(uint32(i)))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "probes/s")
}
