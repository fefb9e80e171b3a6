package sstable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/meridian-ops/meridian/store/bloom"
	"github.com/meridian-ops/meridian/store/vfs"
)

// File layout:
//
//	+--------------+-----+----------------+--------------+-------------+--------+
//	| data block 0 | ... | data block n-1 | filter block | index block | footer |
//	+--------------+-----+----------------+--------------+-------------+--------+
//
// Filter block: | bloom filter (see store/bloom) | crc32c: u32 | (empty,
// length 0, when filters are disabled).
//
// Footer, 48 bytes, little-endian:
//
//	+-------------+-------------+-------------+-------------+-------------+-------------+-----------+-----------+
//	| filter off  | filter len  | index off   | index len   | entries     | magic       | version   | crc32c    |
//	| u64         | u32         | u64         | u32         | u64         | u64         | u32       | u32       |
//	+-------------+-------------+-------------+-------------+-------------+-------------+-----------+-----------+
//	 0             8             12            20            24            32            40          44
//
// The footer CRC covers bytes [0, 44).
const (
	footerSize = 48
	magic      = 0x4f4f522d53535431 // "OOR-SST1"
	version    = 1
	maxBlock   = 64 << 20
)

// WriterOptions tune a Writer. The zero value works.
type WriterOptions struct {
	// BlockSize is the target data-block size in bytes (default 4096).
	BlockSize int
	// BitsPerKey sizes the bloom filter (default 10); negative disables it.
	BitsPerKey int
}

// Meta describes a finished table.
type Meta struct {
	Smallest, Largest []byte
	Entries           int
	Size              int64
}

// Writer builds a table. Add keys in strictly increasing order, then Finish.
type Writer struct {
	f      vfs.File
	opts   WriterOptions
	buf    []byte // pending output, written in large chunks
	off    uint64 // bytes written to f
	blk    blockBuilder
	index  blockBuilder
	filter bloom.Builder
	meta   Meta
	err    error
}

// NewWriter writes a table to f, which it syncs and closes in Finish (or
// closes in Abort).
func NewWriter(f vfs.File, opts WriterOptions) *Writer {
	if opts.BlockSize <= 0 {
		opts.BlockSize = 4096
	}
	if opts.BitsPerKey == 0 {
		opts.BitsPerKey = 10
	}
	return &Writer{f: f, opts: opts}
}

// ErrOrder is returned by Writer.Add for a key not greater than the last.
var ErrOrder = errors.New("sstable: keys added out of order")

// Add appends an entry.
func (w *Writer) Add(key []byte, kind Kind, value []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.meta.Entries > 0 && bytes.Compare(key, w.meta.Largest) <= 0 {
		w.err = fmt.Errorf("%w: %q after %q", ErrOrder, key, w.meta.Largest)
		return w.err
	}
	if w.meta.Entries == 0 {
		w.meta.Smallest = append([]byte(nil), key...)
	}
	w.meta.Largest = append(w.meta.Largest[:0], key...)
	w.meta.Entries++
	w.blk.add(key, kind, value)
	if w.opts.BitsPerKey > 0 {
		w.filter.Add(key)
	}
	if w.blk.size() >= w.opts.BlockSize {
		w.flushBlock()
	}
	return w.err
}

// EstimatedSize is the file size so far, for splitting compaction output.
func (w *Writer) EstimatedSize() int64 {
	return int64(w.off) + int64(len(w.buf)) + int64(w.blk.size())
}

func (w *Writer) flushBlock() {
	if len(w.blk.offsets) == 0 {
		return
	}
	start := w.off + uint64(len(w.buf))
	w.buf = w.blk.finish(w.buf)
	length := w.off + uint64(len(w.buf)) - start
	var handle [12]byte
	binary.LittleEndian.PutUint64(handle[:], start)
	binary.LittleEndian.PutUint32(handle[8:], uint32(length))
	w.index.add(w.blk.lastKey, KindSet, handle[:])
	if len(w.buf) >= 256<<10 {
		w.writeBuf()
	}
}

func (w *Writer) writeBuf() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	n, err := w.f.Write(w.buf)
	w.off += uint64(n)
	if err != nil {
		w.err = fmt.Errorf("sstable: write: %w", err)
	}
	w.buf = w.buf[:0]
}

// Finish writes the filter, index and footer, fsyncs and closes the file.
func (w *Writer) Finish() (Meta, error) {
	w.flushBlock()
	filterOff := w.off + uint64(len(w.buf))
	if w.opts.BitsPerKey > 0 {
		start := len(w.buf)
		w.buf = w.filter.Finish(w.buf, w.opts.BitsPerKey)
		w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf[start:], castagnoli))
	}
	indexOff := w.off + uint64(len(w.buf))
	filterLen := indexOff - filterOff
	w.buf = w.index.finish(w.buf)
	indexLen := w.off + uint64(len(w.buf)) - indexOff
	start := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, filterOff)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(filterLen))
	w.buf = binary.LittleEndian.AppendUint64(w.buf, indexOff)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(indexLen))
	w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(w.meta.Entries))
	w.buf = binary.LittleEndian.AppendUint64(w.buf, magic)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, version)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf[start:], castagnoli))
	w.writeBuf()
	if w.err == nil {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("sstable: fsync: %w", err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("sstable: close: %w", err)
	}
	w.meta.Size = int64(w.off)
	if w.err != nil {
		return Meta{}, w.err
	}
	w.err = errors.New("sstable: writer finished")
	return w.meta, nil
}

// Abort closes the file without finishing it; the caller removes it.
func (w *Writer) Abort() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.err = errors.New("sstable: writer aborted")
}

// Reader serves lookups from one table file.
type Reader struct {
	f       vfs.File
	id      uint64
	cache   *Cache
	index   Block
	filter  bloom.Filter
	entries uint64
	size    int64
}

// Open reads and verifies the footer, index and filter of a table. id
// names the table in the cache. The Reader owns f and closes it in Close.
func Open(f vfs.File, id uint64, cache *Cache) (*Reader, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("sstable: size: %w", err)
	}
	if size < footerSize {
		return nil, fmt.Errorf("%w: file of %d bytes", ErrCorrupt, size)
	}
	var foot [footerSize]byte
	if _, err := f.ReadAt(foot[:], size-footerSize); err != nil && err != io.EOF {
		return nil, fmt.Errorf("sstable: read footer: %w", err)
	}
	ft, err := decodeFooter(foot[:], size)
	if err != nil {
		return nil, err
	}
	r := &Reader{f: f, id: id, cache: cache, entries: ft.entries, size: size}
	ib, err := readAt(f, ft.indexOff, ft.indexLen)
	if err != nil {
		return nil, err
	}
	if r.index, err = DecodeBlock(ib); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	for i := 0; i < r.index.n; i++ {
		if _, v, _ := r.index.Entry(i); len(v) != 12 {
			return nil, fmt.Errorf("%w: index entry %d", ErrCorrupt, i)
		}
	}
	if ft.filterLen > 0 {
		fb, err := readAt(f, ft.filterOff, ft.filterLen)
		if err != nil {
			return nil, err
		}
		if r.filter, err = decodeFilterBlock(fb); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type footer struct {
	filterOff, indexOff uint64
	filterLen, indexLen uint64
	entries             uint64
}

func decodeFooter(b []byte, size int64) (footer, error) {
	if crc32.Checksum(b[:44], castagnoli) != binary.LittleEndian.Uint32(b[44:]) {
		return footer{}, fmt.Errorf("%w: footer checksum", ErrCorrupt)
	}
	if binary.LittleEndian.Uint64(b[32:]) != magic || binary.LittleEndian.Uint32(b[40:]) != version {
		return footer{}, fmt.Errorf("%w: bad magic or version", ErrCorrupt)
	}
	ft := footer{
		filterOff: binary.LittleEndian.Uint64(b[0:]), filterLen: uint64(binary.LittleEndian.Uint32(b[8:])),
		indexOff: binary.LittleEndian.Uint64(b[12:]), indexLen: uint64(binary.LittleEndian.Uint32(b[20:])),
		entries: binary.LittleEndian.Uint64(b[24:]),
	}
	limit := uint64(size - footerSize)
	if ft.filterOff > limit || ft.filterLen > limit-ft.filterOff || ft.indexOff != ft.filterOff+ft.filterLen ||
		ft.indexLen > limit-ft.indexOff || ft.indexOff+ft.indexLen != limit || ft.indexLen > maxBlock {
		return footer{}, fmt.Errorf("%w: footer offsets", ErrCorrupt)
	}
	return ft, nil
}

func decodeFilterBlock(b []byte) (bloom.Filter, error) {
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return bloom.Filter{}, fmt.Errorf("%w: filter checksum", ErrCorrupt)
	}
	f, err := bloom.Decode(b[:len(b)-4])
	if err != nil {
		return bloom.Filter{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return f, nil
}

func readAt(f vfs.File, off, n uint64) ([]byte, error) {
	if n > maxBlock {
		return nil, fmt.Errorf("%w: block of %d bytes", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(off)); err != nil && !(err == io.EOF && n == 0) {
		if err == io.EOF {
			return nil, fmt.Errorf("%w: block past end of file", ErrCorrupt)
		}
		return nil, fmt.Errorf("sstable: read: %w", err)
	}
	return b, nil
}

// ID returns the id given to Open.
func (r *Reader) ID() uint64 { return r.id }

// Entries returns the number of entries in the table.
func (r *Reader) Entries() uint64 { return r.entries }

// Size returns the file size.
func (r *Reader) Size() int64 { return r.size }

// HasFilter reports whether the table carries a bloom filter.
func (r *Reader) HasFilter() bool { return !r.filter.Empty() }

// MayContain consults the bloom filter with a bloom.Hash of the key; it is
// always true for a table without a filter.
func (r *Reader) MayContain(hash uint64) bool { return r.filter.MayContain(hash) }

// block returns data block i, from the cache when possible.
func (r *Reader) block(i int) (Block, error) {
	_, h, _ := r.index.Entry(i)
	off, n := binary.LittleEndian.Uint64(h), uint64(binary.LittleEndian.Uint32(h[8:]))
	k := cacheKey{r.id, off}
	if b, ok := r.cache.get(k); ok {
		return b, nil
	}
	raw, err := readAt(r.f, off, n)
	if err != nil {
		return Block{}, err
	}
	b, err := DecodeBlock(raw)
	if err != nil {
		return Block{}, fmt.Errorf("table %d block %d: %w", r.id, i, err)
	}
	r.cache.put(k, b)
	return b, nil
}

// Get returns the entry for key. It does not consult the filter.
func (r *Reader) Get(key []byte) (value []byte, kind Kind, found bool, err error) {
	bi := r.index.Search(key)
	if bi == r.index.n {
		return nil, 0, false, nil
	}
	b, err := r.block(bi)
	if err != nil {
		return nil, 0, false, err
	}
	i := b.Search(key)
	if i == b.n {
		return nil, 0, false, nil
	}
	k, v, kind := b.Entry(i)
	if !bytes.Equal(k, key) {
		return nil, 0, false, nil
	}
	return v, kind, true, nil
}

// Close releases the file and the table's cached blocks.
func (r *Reader) Close() error {
	r.cache.evictTable(r.id)
	return r.f.Close()
}

// Iter iterates a table in key order. Not safe for concurrent use.
type Iter struct {
	r   *Reader
	bi  int // data block index
	blk Block
	i   int // entry within blk
	err error
}

// NewIter returns an unpositioned iterator.
func (r *Reader) NewIter() *Iter { return &Iter{r: r, bi: -1} }

func (it *Iter) load(bi int) bool {
	for ; bi < it.r.index.n; bi++ {
		b, err := it.r.block(bi)
		if err != nil {
			it.err, it.bi = err, it.r.index.n
			return false
		}
		if b.n > 0 {
			it.bi, it.blk, it.i = bi, b, 0
			return true
		}
	}
	it.bi = it.r.index.n
	return false
}

// First positions at the first entry.
func (it *Iter) First() bool { return it.load(0) }

// SeekGE positions at the first entry with key >= key.
func (it *Iter) SeekGE(key []byte) bool {
	bi := it.r.index.Search(key)
	if !it.load(bi) {
		return false
	}
	if it.bi == bi {
		it.i = it.blk.Search(key)
		if it.i == it.blk.n {
			return it.load(bi + 1)
		}
	}
	return true
}

// Next advances.
func (it *Iter) Next() bool {
	if !it.Valid() {
		return false
	}
	it.i++
	if it.i < it.blk.n {
		return true
	}
	return it.load(it.bi + 1)
}

// Valid reports whether the iterator is at an entry.
func (it *Iter) Valid() bool { return it.bi >= 0 && it.bi < it.r.index.n && it.err == nil }

// Entry returns the current entry.
func (it *Iter) Entry() (key, value []byte, kind Kind) { return it.blk.Entry(it.i) }

// Err returns the error that stopped iteration, if any.
func (it *Iter) Err() error { return it.err }

// Check reads every block and verifies the table: block checksums and
// order, index keys equal to each block's last key, keys increasing across
// blocks, the entry count, and that the filter admits every key.
func (r *Reader) Check() error {
	var prev []byte
	var count uint64
	for bi := 0; bi < r.index.n; bi++ {
		b, err := r.block(bi)
		if err != nil {
			return err
		}
		if b.n == 0 {
			return fmt.Errorf("%w: table %d block %d empty", ErrCorrupt, r.id, bi)
		}
		first := b.Key(0)
		if prev != nil && bytes.Compare(prev, first) >= 0 {
			return fmt.Errorf("%w: table %d block %d starts at or before previous key", ErrCorrupt, r.id, bi)
		}
		last := b.Key(b.n - 1)
		if !bytes.Equal(r.index.Key(bi), last) {
			return fmt.Errorf("%w: table %d index key of block %d", ErrCorrupt, r.id, bi)
		}
		for i := 0; i < b.n; i++ {
			if !r.filter.MayContain(bloom.Hash(b.Key(i))) {
				return fmt.Errorf("%w: table %d filter misses key %x", ErrCorrupt, r.id, b.Key(i))
			}
		}
		prev = last
		count += uint64(b.n)
	}
	if count != r.entries {
		return fmt.Errorf("%w: table %d has %d entries, footer says %d", ErrCorrupt, r.id, count, r.entries)
	}
	return nil
}

// Bounds returns the smallest and largest key (nil, nil for an empty table).
func (r *Reader) Bounds() (smallest, largest []byte, err error) {
	if r.index.n == 0 {
		return nil, nil, nil
	}
	b, err := r.block(0)
	if err != nil {
		return nil, nil, err
	}
	return b.Key(0), r.index.Key(r.index.n - 1), nil
}
