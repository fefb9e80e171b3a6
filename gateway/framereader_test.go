package gateway

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/meridian-ops/meridian/schemas"
)

// chunked returns data in pieces of the given sizes, then io.EOF.
type chunked struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)])%7 + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// The resumable reader returns exactly what schemas.ReadFrame (the
// reference) returns, whatever the read sizes, and survives a timeout in
// the middle of a frame.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 1, 'x'}, []byte{1, 2, 3})
	f.Add([]byte{0, 1, 0, 1}, []byte{0})
	f.Add([]byte{0, 0, 0, 0}, []byte{5})
	f.Add([]byte{0, 0, 0, 9, 'a'}, []byte{2})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		var want [][]byte
		var wantErr error
		ref := bytes.NewReader(data)
		for {
			p, err := schemas.ReadFrame(ref, nil)
			if err != nil {
				wantErr = err
				break
			}
			want = append(want, bytes.Clone(p))
		}
		fr := newFrameReader(iotest.TimeoutReader(&chunked{data: data, sizes: sizes}))
		var got [][]byte
		var gotErr error
		for {
			p, err := fr.next()
			if errors.Is(err, iotest.ErrTimeout) {
				continue // a deadline interrupt: the reader must resume where it was
			}
			if err != nil {
				gotErr = err
				break
			}
			got = append(got, bytes.Clone(p))
		}
		if len(got) != len(want) {
			t.Fatalf("got %d frames, reference %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
		for _, sentinel := range []error{io.EOF, io.ErrUnexpectedEOF, schemas.ErrFrameTooLarge, schemas.ErrFrameEmpty} {
			if errors.Is(wantErr, sentinel) != errors.Is(gotErr, sentinel) {
				t.Fatalf("ended with %v, reference %v", gotErr, wantErr)
			}
		}
	})
}

// The UDP receive loop never blocks: with the hand-off full, datagrams are
// dropped and counted.
func TestUDPReceiveDropsWhenHandOffFull(t *testing.T) {
	u := NewUDP(nil, UDPConfig{Addr: "127.0.0.1:0"})
	if err := u.Listen(); err != nil {
		t.Fatal(err)
	}
	queue := make(chan schemas.Detection, 1) // nobody reads it
	done := make(chan struct{})
	go func() { u.receive(queue); close(done) }()
	c, err := netDial(u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dropped := func() float64 { return counterValue(udpTotal.WithLabelValues("dropped")) }
	before := dropped()
	d := schemas.AppendDetection(nil, schemas.Detection{SensorID: 1, Azimuth: 1, Elevation: 1, RangeKm: 1})
	for dropped() < before+5 {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	u.conn.Close()
	<-done
	if len(queue) != 1 {
		t.Fatalf("hand-off holds %d", len(queue))
	}
}
