package wal

import (
	"testing"
)

// BenchmarkAppend: framing and buffering one 100-byte record (a TLE put)
// on a real file, no fsync.
func BenchmarkAppend(b *testing.B) {
	w, err := Open(ctx, Options{Dir: b.TempDir(), Sync: SyncNone}, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	p := make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(p) + headerSize))
	for b.Loop() {
		if _, err := w.Append(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendSync: one fsync per record (SyncAlways, one writer): the
// cost a caller pays for per-write durability on this disk.
func BenchmarkAppendSync(b *testing.B) {
	w, err := Open(ctx, Options{Dir: b.TempDir()}, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	p := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		lsn, err := w.Append(p)
		if err == nil {
			err = w.Sync(ctx, lsn)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadRecords: decoding a 1,000-record segment image (replay's
// inner loop).
func BenchmarkReadRecords(b *testing.B) {
	var seg []byte
	p := make([]byte, 100)
	for i := uint64(1); i <= 1000; i++ {
		seg = AppendRecord(seg, i, p)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if _, last, _, _ := ReadRecords(seg, 1, func(uint64, []byte) error { return nil }); last != 1000 {
			b.Fatal(last)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
}
