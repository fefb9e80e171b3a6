package gateway

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/meridian-ops/meridian/schemas"
)

// frameReader reads length-prefixed frames and, unlike schemas.ReadFrame,
// survives a read error in the middle of a frame: it keeps what it has
// read, so after a deadline interrupt the session can decide to finish the
// frame (shutdown) or give up (idle timeout). The returned payload aliases
// an internal buffer valid until the next call.
type frameReader struct {
	r    io.Reader
	hdr  [4]byte
	nh   int // header bytes read of the current frame
	buf  []byte
	need int // payload length of the current frame, once the header is complete
	np   int // payload bytes read
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: r, buf: make([]byte, 0, 4096)}
}

// midFrame reports whether part of a frame has been read.
func (fr *frameReader) midFrame() bool { return fr.nh > 0 }

// next returns the next payload. io.EOF means a clean end at a frame
// boundary; io.ErrUnexpectedEOF a connection closed mid-frame; framing
// errors (schemas.ErrFrameTooLarge, schemas.ErrFrameEmpty) are fatal for
// the session. Any other error (a deadline) leaves the reader resumable.
func (fr *frameReader) next() ([]byte, error) {
	for fr.nh < 4 {
		n, err := fr.r.Read(fr.hdr[fr.nh:])
		fr.nh += n
		if fr.nh == 4 {
			break
		}
		if err != nil {
			if err == io.EOF && fr.nh > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if fr.need == 0 {
		n := binary.BigEndian.Uint32(fr.hdr[:])
		if n == 0 {
			return nil, schemas.ErrFrameEmpty
		}
		if n > schemas.MaxFrameSize {
			return nil, fmt.Errorf("%w: %d", schemas.ErrFrameTooLarge, n)
		}
		fr.need = int(n)
		if cap(fr.buf) < fr.need {
			fr.buf = make([]byte, fr.need)
		}
		fr.buf = fr.buf[:fr.need]
	}
	for fr.np < fr.need {
		n, err := fr.r.Read(fr.buf[fr.np:fr.need])
		fr.np += n
		if fr.np == fr.need {
			break
		}
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	p := fr.buf[:fr.need]
	fr.nh, fr.need, fr.np = 0, 0, 0
	return p, nil
}
