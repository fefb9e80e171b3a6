package pagefile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func openTemp(t *testing.T) (*Pager, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pages.oor")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, path
}

func writeTestPages(t *testing.T, p *Pager, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	var want [][]byte
	for i := range n {
		id, err := p.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, PageSize)
		Init(buf, id, TypeSlotted)
		SetLSN(buf, uint64(100+i))
		for j := HeaderSize; j < PageSize; j++ {
			buf[j] = byte(i*7 + j)
		}
		if err := p.WritePage(ctx, id, buf); err != nil {
			t.Fatal(err)
		}
		want = append(want, buf)
	}
	return want
}

// Criterion 1: a page written at id*4096 reads back identically, at the
// right offset, also after reopening the file.
func TestPageRoundTripAtOffset(t *testing.T) {
	ctx := context.Background()
	p, path := openTemp(t)
	want := writeTestPages(t, p, 4)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 4*PageSize {
		t.Fatalf("file is %d bytes", len(raw))
	}
	for i, w := range want {
		if !bytes.Equal(raw[i*PageSize:(i+1)*PageSize], w) {
			t.Fatalf("page %d not at offset %d", i, i*PageSize)
		}
		got := make([]byte, PageSize)
		if err := p.ReadPage(ctx, uint32(i), got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) || LSN(got) != uint64(100+i) || PageType(got) != TypeSlotted || ID(got) != uint32(i) {
			t.Fatalf("page %d differs after read", i)
		}
	}
	if err := p.ReadPage(ctx, 4, make([]byte, PageSize)); !errors.Is(err, ErrPageRange) {
		t.Fatalf("read past end: %v", err)
	}
}

// Criterion 2: flipping any single bit of a written page is detected.
func TestFlippedBitIsAnError(t *testing.T) {
	ctx := context.Background()
	p, path := openTemp(t)
	writeTestPages(t, p, 2)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Every byte of page 1, one bit each (bit varies with the offset).
	for off := range PageSize {
		pos := int64(PageSize + off)
		var b [1]byte
		if _, err := f.ReadAt(b[:], pos); err != nil {
			t.Fatal(err)
		}
		mask := byte(1) << (off % 8)
		if _, err := f.WriteAt([]byte{b[0] ^ mask}, pos); err != nil {
			t.Fatal(err)
		}
		err := p.ReadPage(ctx, 1, make([]byte, PageSize))
		if !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrBadPage) {
			t.Fatalf("bit %d of byte %d flipped: got %v", off%8, off, err)
		}
		if off == 20 && !errors.Is(err, ErrChecksum) {
			t.Fatalf("body flip should be a checksum error, got %v", err)
		}
		if _, err := f.WriteAt(b[:], pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.ReadPage(ctx, 1, make([]byte, PageSize)); err != nil {
		t.Fatalf("restored page: %v", err)
	}
}

func TestTornFileAndUnwrittenPage(t *testing.T) {
	ctx := context.Background()
	p, path := openTemp(t)
	writeTestPages(t, p, 1)
	id, _ := p.Allocate() // allocated, never written
	if err := p.ReadPage(ctx, id, make([]byte, PageSize)); err == nil {
		t.Fatal("unwritten page read without error")
	}
	if err := os.WriteFile(path+".torn", make([]byte, PageSize+100), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path + ".torn")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open(f); !errors.Is(err, ErrBadPage) {
		t.Fatalf("torn file: %v", err)
	}
	// An all-zero page is not a page.
	if err := Verify(make([]byte, PageSize), 0); !errors.Is(err, ErrBadPage) {
		t.Fatalf("zero page: %v", err)
	}
}

func TestMisdirectedWrite(t *testing.T) {
	buf := make([]byte, PageSize)
	Init(buf, 3, TypeMeta)
	Seal(buf, 3)
	if err := Verify(buf, 3); err != nil {
		t.Fatal(err)
	}
	if err := Verify(buf, 4); !errors.Is(err, ErrBadPage) {
		t.Fatalf("page 3 read as page 4: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	good := make([]byte, PageSize)
	Init(good, 1, TypeBTreeLeaf)
	Seal(good, 1)
	f.Add(good, uint32(1))
	f.Add(make([]byte, PageSize), uint32(0))
	f.Add([]byte("OOR1"), uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, id uint32) {
		if err := Verify(b, id); err != nil {
			return
		}
		// Accepted pages are self-consistent.
		if ID(b) != id || PageType(b) == 0 {
			t.Fatalf("accepted page with id %d type %d", ID(b), PageType(b))
		}
		c := bytes.Clone(b)
		Seal(c, id)
		if !bytes.Equal(b, c) {
			t.Fatal("resealing an accepted page changed it")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	buf := make([]byte, PageSize)
	Init(buf, 1, TypeBTreeLeaf)
	Seal(buf, 1)
	b.ReportAllocs()
	b.SetBytes(PageSize)
	for b.Loop() {
		if err := Verify(buf, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
