package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/bloom"
	"github.com/meridian-ops/meridian/store/vfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

func k(i uint32) []byte { return binary.BigEndian.AppendUint32(nil, i) }

func val(i uint32) []byte { return []byte(fmt.Sprintf("value-%d", i)) }

// build writes keys 0, step, 2*step, ... (n of them); every 7th is a tombstone.
func build(t testing.TB, fs vfs.FS, name string, n int, step uint32, opts WriterOptions) Meta {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(f, opts)
	for i := 0; i < n; i++ {
		key := uint32(i) * step
		kind := KindSet
		var v []byte
		if i%7 == 3 {
			kind = KindDelete
		} else {
			v = val(key)
		}
		if err := w.Add(k(key), kind, v); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t testing.TB, fs vfs.FS, name string, cache *Cache) *Reader {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(f, 1, cache)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTripGetIterSeek(t *testing.T) {
	for _, opts := range []WriterOptions{{}, {BlockSize: 64}, {BitsPerKey: -1}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			fs := vfs.NewMem()
			m := build(t, fs, "t.sst", 3000, 2, opts)
			if m.Entries != 3000 || !bytes.Equal(m.Smallest, k(0)) || !bytes.Equal(m.Largest, k(5998)) {
				t.Fatalf("meta %+v", m)
			}
			r := open(t, fs, "t.sst", NewCache(1<<20))
			defer r.Close()
			if err := r.Check(); err != nil {
				t.Fatal(err)
			}
			if r.HasFilter() != (opts.BitsPerKey >= 0) {
				t.Fatalf("HasFilter = %v", r.HasFilter())
			}
			for i := uint32(0); i < 6001; i++ {
				v, kind, found, err := r.Get(k(i))
				if err != nil {
					t.Fatal(err)
				}
				present := i%2 == 0 && i < 6000
				if found != present {
					t.Fatalf("key %d found=%v", i, found)
				}
				if !present {
					continue
				}
				if !r.MayContain(bloom.Hash(k(i))) {
					t.Fatalf("filter false negative %d", i)
				}
				if tomb := (i/2)%7 == 3; tomb != (kind == KindDelete) || (!tomb && !bytes.Equal(v, val(i))) {
					t.Fatalf("key %d: %q kind %d", i, v, kind)
				}
			}
			it := r.NewIter()
			n := 0
			for ok := it.First(); ok; ok = it.Next() {
				key, _, _ := it.Entry()
				if !bytes.Equal(key, k(uint32(n*2))) {
					t.Fatalf("iter pos %d key %x", n, key)
				}
				n++
			}
			if n != 3000 || it.Err() != nil {
				t.Fatalf("iterated %d, err %v", n, it.Err())
			}
			for _, s := range []uint32{0, 1, 2, 1001, 5998, 5999} {
				ok := it.SeekGE(k(s))
				want := (s + 1) / 2 * 2
				if want >= 6000 {
					if ok {
						t.Fatalf("SeekGE(%d) past end is valid", s)
					}
					continue
				}
				key, _, _ := it.Entry()
				if !ok || !bytes.Equal(key, k(want)) {
					t.Fatalf("SeekGE(%d) = %x, want %d", s, key, want)
				}
			}
		})
	}
}

func TestAddOutOfOrder(t *testing.T) {
	f, _ := vfs.NewMem().Create("x")
	w := NewWriter(f, WriterOptions{})
	w.Add(k(2), KindSet, nil)
	if err := w.Add(k(2), KindSet, nil); !errors.Is(err, ErrOrder) {
		t.Fatalf("err = %v", err)
	}
	w.Abort()
}

// TestEveryByteFlipDetected flips each byte of a small table: Open or
// Check must report corruption; no flip may go unnoticed.
func TestEveryByteFlipDetected(t *testing.T) {
	fs := vfs.NewMem()
	build(t, fs, "t.sst", 40, 3, WriterOptions{BlockSize: 128})
	orig, _ := vfs.ReadAll(fs, "t.sst")
	for off := range orig {
		data := bytes.Clone(orig)
		data[off] ^= 0x10
		vfs.WriteFile(fs, "c.sst", data)
		f, _ := fs.Open("c.sst")
		r, err := Open(f, 9, nil)
		if err == nil {
			err = r.Check()
			r.Close()
		} else {
			f.Close()
		}
		if err == nil {
			t.Fatalf("flip at byte %d of %d undetected", off, len(orig))
		}
	}
}

func TestCacheHitsAndEviction(t *testing.T) {
	fs := vfs.NewMem()
	build(t, fs, "t.sst", 2000, 1, WriterOptions{})
	c := NewCache(3 * 4200) // about three blocks
	r := open(t, fs, "t.sst", c)
	for i := 0; i < 3; i++ {
		r.Get(k(5))
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 {
		t.Fatalf("stats %+v", s)
	}
	for i := uint32(0); i < 2000; i += 10 {
		r.Get(k(i))
	}
	if s := c.Stats(); s.Bytes > 3*4200 || s.Blocks > 3 {
		t.Fatalf("cache over capacity: %+v", s)
	}
	r.Close()
	if s := c.Stats(); s.Blocks != 0 {
		t.Fatalf("closed table left %d cached blocks", s.Blocks)
	}
}

// TestGolden pins the on-disk format: an accidental change fails here.
// Rewrite with: go test ./store/sstable -run TestGolden -update
func TestGolden(t *testing.T) {
	fs := vfs.NewMem()
	build(t, fs, "g.sst", 50, 5, WriterOptions{BlockSize: 256})
	got, _ := vfs.ReadAll(fs, "g.sst")
	path := filepath.Join("testdata", "golden.sst")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("table encoding changed (%d bytes, golden %d); if intended, rerun with -update", len(got), len(want))
	}
}

func FuzzDecodeBlock(f *testing.F) {
	var b blockBuilder
	b.add(k(1), KindSet, []byte("a"))
	b.add(k(2), KindDelete, nil)
	f.Add(b.finish(nil))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		blk, err := DecodeBlock(data)
		if err != nil {
			return
		}
		var prev []byte
		for i := 0; i < blk.Len(); i++ {
			key, _, _ := blk.Entry(i)
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				t.Fatal("accepted block with unordered keys")
			}
			prev = key
		}
		blk.Search([]byte("m"))
	})
}

func FuzzOpenTable(f *testing.F) {
	fs := vfs.NewMem()
	build(f, fs, "s.sst", 20, 1, WriterOptions{BlockSize: 64})
	seed, _ := vfs.ReadAll(fs, "s.sst")
	f.Add(seed)
	f.Add(make([]byte, footerSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := vfs.NewMem()
		vfs.WriteFile(mem, "x.sst", data)
		fl, _ := mem.Open("x.sst")
		r, err := Open(fl, 1, nil)
		if err != nil {
			return
		}
		defer r.Close()
		r.Check()
		r.Get(k(3))
		it := r.NewIter()
		for ok := it.First(); ok; ok = it.Next() {
		}
	})
}

func BenchmarkGet(b *testing.B) {
	fs := vfs.NewMem()
	build(b, fs, "t.sst", 100000, 1, WriterOptions{})
	r := open(b, fs, "t.sst", NewCache(64<<20))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Get(k(uint32(i*7919) % 100000))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

func BenchmarkWrite(b *testing.B) {
	fs := vfs.NewMem()
	v := make([]byte, 82)
	b.ReportAllocs()
	for b.Loop() {
		f, _ := fs.Create("w.sst")
		w := NewWriter(f, WriterOptions{})
		for i := uint32(0); i < 10000; i++ {
			w.Add(k(i), KindSet, v)
		}
		w.Finish()
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "records/s")
}
