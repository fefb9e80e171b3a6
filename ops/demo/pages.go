package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
	"github.com/meridian-ops/meridian/store/slotted"
	"github.com/meridian-ops/meridian/store/tle"
)

// Pages runs the "TLE Record Page Manager" acceptance criteria against
// store/pagefile, store/bufpool and store/slotted in a temporary directory:
// page I/O at id×4096, checksum detection of a flipped bit, the buffer-pool
// hit rate for 200 records with 8 frames, 40 records in one slotted page,
// delete-every-other plus compaction, and page-full handling.
func Pages(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "meridian-pages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var inserted, read, deleted int

	// 1. Page I/O at the right offsets.
	path := filepath.Join(dir, "pages.oor")
	pg, f, err := openPager(path)
	if err != nil {
		return err
	}
	var written [][]byte
	for i := range 3 {
		id, err := pg.Allocate()
		if err != nil {
			return err
		}
		buf := make([]byte, pagefile.PageSize)
		pagefile.Init(buf, id, pagefile.TypeSlotted)
		for j := pagefile.HeaderSize; j < pagefile.PageSize; j++ {
			buf[j] = byte(i + j)
		}
		if err := pg.WritePage(ctx, id, buf); err != nil {
			return err
		}
		written = append(written, buf)
	}
	for i, want := range written {
		raw := make([]byte, pagefile.PageSize)
		if _, err := f.ReadAt(raw, int64(i)*pagefile.PageSize); err != nil {
			return err
		}
		got := make([]byte, pagefile.PageSize)
		if err := pg.ReadPage(ctx, uint32(i), got); err != nil {
			return err
		}
		if !bytes.Equal(raw, want) || !bytes.Equal(got, want) {
			return fmt.Errorf("criterion 1: page %d not read back identically at offset %d", i, i*pagefile.PageSize)
		}
	}
	fmt.Fprintf(w, "1 page I/O: %d pages written and read back identically at id*4096\n", len(written))

	// 2. A flipped bit is an error, never data.
	off := int64(1*pagefile.PageSize + 20)
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte{b[0] ^ 1}, off); err != nil {
		return err
	}
	err = pg.ReadPage(ctx, 1, make([]byte, pagefile.PageSize))
	if !errors.Is(err, pagefile.ErrChecksum) {
		return fmt.Errorf("criterion 2: flipped bit in page 1 not detected: %v", err)
	}
	fmt.Fprintf(w, "2 checksum: bit 0 of byte 20 of page 1 flipped -> %v\n", err)
	_ = pg.Close()

	// 3. 200 records, 8 frames, read back in order.
	hpg, _, err := openPager(filepath.Join(dir, "heap.oor"))
	if err != nil {
		return err
	}
	defer hpg.Close()
	pool := bufpool.New(hpg, bufpool.Config{Frames: 8})
	heap, err := slotted.OpenHeap(ctx, pool)
	if err != nil {
		return err
	}
	var rids []slotted.RID
	for i := range 200 {
		rid, err := heap.Insert(ctx, demoRecord(uint32(40000+i)))
		if err != nil {
			return err
		}
		rids = append(rids, rid)
		inserted++
	}
	pool.ResetStats()
	var rec []byte
	for i, rid := range rids {
		var ok bool
		if rec, ok, err = heap.Get(ctx, rid, rec[:0]); err != nil || !ok || !bytes.Equal(rec, demoRecord(uint32(40000+i))) {
			return fmt.Errorf("criterion 3: record %d at %v: found=%v err=%v", i, rid, ok, err)
		}
		read++
	}
	st := pool.Stats()
	fmt.Fprintf(w, "3 buffer pool: 200 records on %d pages, 8 frames, read pass hits=%d misses=%d hit rate=%.1f%%\n",
		len(heap.Pages()), st.Hits, st.Misses, 100*st.HitRate())
	if st.HitRate() <= 0.90 {
		return fmt.Errorf("criterion 3: hit rate %.1f%% not above 90%%", 100*st.HitRate())
	}

	// 4. 40 records in one page.
	page := slotted.Init(make([]byte, pagefile.PageSize), 1)
	for i := range 40 {
		s, err := page.Insert(demoRecord(uint32(i)))
		if err != nil || int(s) != i {
			return fmt.Errorf("criterion 4: insert %d: slot %d, %v", i, s, err)
		}
		inserted++
	}
	for i := range 40 {
		if got, ok := page.Get(uint16(i)); !ok || !bytes.Equal(got, demoRecord(uint32(i))) {
			return fmt.Errorf("criterion 4: slot %d does not match", i)
		}
		read++
	}
	fmt.Fprintf(w, "4 slotted page: 40 records inserted into one page and found by (page, slot)\n")

	// 5. Delete every other slot, compact, re-check.
	for i := 0; i < 40; i += 2 {
		if !page.Delete(uint16(i)) {
			return fmt.Errorf("criterion 5: delete slot %d", i)
		}
		deleted++
	}
	before, contBefore := page.FreeSpace(), page.ContiguousFree()
	page.Compact()
	if err := page.Check(); err != nil {
		return fmt.Errorf("criterion 5: %w", err)
	}
	for i := range 40 {
		got, ok := page.Get(uint16(i))
		if i%2 == 0 && ok {
			return fmt.Errorf("criterion 5: deleted slot %d still returns data", i)
		}
		if i%2 == 1 && (!ok || !bytes.Equal(got, demoRecord(uint32(i)))) {
			return fmt.Errorf("criterion 5: slot %d lost after compaction", i)
		}
	}
	if page.ContiguousFree() != page.FreeSpace() || page.ContiguousFree() <= contBefore {
		return fmt.Errorf("criterion 5: compaction left free=%d contiguous=%d", page.FreeSpace(), page.ContiguousFree())
	}
	fmt.Fprintf(w, "5 delete+compact: 20 slots deleted, contiguous free %d -> %d bytes (total free %d), 20 survivors at their slot ids\n",
		contBefore, page.ContiguousFree(), before)

	// 6. Page full is detected before anything is written.
	full := slotted.Init(make([]byte, pagefile.PageSize), 2)
	n := 0
	for {
		snapshot := bytes.Clone(full)
		_, err := full.Insert(demoRecord(uint32(n)))
		if errors.Is(err, slotted.ErrPageFull) {
			if !bytes.Equal(snapshot, full) {
				return fmt.Errorf("criterion 6: failed insert modified the page")
			}
			break
		}
		if err != nil {
			return err
		}
		n++
		inserted++
	}
	pagesBefore := len(heap.Pages())
	for i := range n + 1 {
		if _, err := heap.Insert(ctx, demoRecord(uint32(50000+i))); err != nil {
			return err
		}
		inserted++
	}
	fmt.Fprintf(w, "6 page full: detected after %d records with the page unchanged; heap continued on new pages (%d -> %d)\n",
		n, pagesBefore, len(heap.Pages()))
	if len(heap.Pages()) <= pagesBefore {
		return fmt.Errorf("criterion 6: heap did not allocate a new page")
	}
	fmt.Fprintf(w, "7 summary: records inserted=%d read=%d deleted=%d; pool %v\n", inserted, read, deleted, pool.Stats())
	return nil
}

func openPager(path string) (*pagefile.Pager, *os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	pg, err := pagefile.Open(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return pg, f, nil
}

// demoRecord is the 82-byte record of a synthetic object.
func demoRecord(id uint32) []byte {
	r := tle.Record{NoradID: id, Epoch: 26001.5 + float64(id%1000)/1000, MeanMotion: 15.5,
		Eccentricity: 0.0001, Inclination: 53, ElementSet: uint16(id % 999), RevNumber: id * 7}
	r.SetDesignator("26001A")
	b, _ := r.MarshalBinary()
	return b
}
