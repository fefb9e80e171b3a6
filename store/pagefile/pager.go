package pagefile

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// File is what the pager needs from a file. *os.File satisfies it; so do the
// files of store/vfs, which tests use to inject faults.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
	Stat() (fs.FileInfo, error)
}

// Pager reads and writes whole pages of one File. It is safe for concurrent
// use; reads and writes of different pages proceed in parallel.
type Pager struct {
	f File

	mu     sync.Mutex
	n      uint32 // pages allocated (file pages + allocated, not yet written)
	closed bool
}

// Open wraps f. The file's size must be a multiple of PageSize; a partial
// trailing page (a torn extension) is reported as ErrBadPage.
func Open(f File) (*Pager, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pagefile: stat: %w", err)
	}
	size := st.Size()
	if size%PageSize != 0 {
		return nil, fmt.Errorf("%w: file size %d is not a multiple of %d", ErrBadPage, size, PageSize)
	}
	if size/PageSize > 1<<32-1 {
		return nil, fmt.Errorf("%w: file too large (%d bytes)", ErrBadPage, size)
	}
	return &Pager{f: f, n: uint32(size / PageSize)}, nil
}

// PageCount returns the number of allocated pages; valid ids are below it.
func (p *Pager) PageCount() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Allocate reserves the next page id at the end of the file. The page is
// written by the caller's first WritePage.
func (p *Pager) Allocate() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	if p.n == 1<<32-1 {
		return 0, fmt.Errorf("pagefile: file full")
	}
	p.n++
	return p.n - 1, nil
}

// ReadPage reads page id into buf (PageSize bytes) and verifies it. On error
// the contents of buf are unspecified and must not be used.
func (p *Pager) ReadPage(ctx context.Context, id uint32, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := p.PageCount(); id >= n {
		return fmt.Errorf("%w: page %d, file has %d", ErrPageRange, id, n)
	}
	k, err := p.f.ReadAt(buf[:PageSize], int64(id)*PageSize)
	if k < PageSize {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("pagefile: read page %d: %w", id, err)
	}
	return Verify(buf[:PageSize], id)
}

// WritePage seals buf as page id and writes it at its offset. It does not
// fsync.
func (p *Pager) WritePage(ctx context.Context, id uint32, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := p.PageCount(); id >= n {
		return fmt.Errorf("%w: write page %d, file has %d", ErrPageRange, id, n)
	}
	Seal(buf, id)
	if _, err := p.f.WriteAt(buf[:PageSize], int64(id)*PageSize); err != nil {
		return fmt.Errorf("pagefile: write page %d: %w", id, err)
	}
	return nil
}

// Sync flushes written pages to stable storage.
func (p *Pager) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("pagefile: sync: %w", err)
	}
	return nil
}

// Close closes the underlying file without syncing it.
func (p *Pager) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.mu.Unlock()
	return p.f.Close()
}
