package processor

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/meridian-ops/meridian/schemas"
)

// CoreConfig sizes the core. The zero value fits the course's batches.
type CoreConfig struct {
	MaxFrames  int // frames per batch the buffers are sized for; default 10,000
	ArenaBytes int // initial arena; default 4 MiB (grows if a batch needs more)
	// Window is how many recent frame keys are remembered across batches;
	// default 131,072 (at least twice MaxFrames).
	Window int
}

// Result counts what one batch did.
type Result struct {
	In, Out, Duplicates, Invalid, Emergency int
}

// Output is one source's processed frames, encoded as a FrameBatch. Data
// and Source are valid until the next Process.
type Output struct {
	Source []byte
	Data   []byte
	Frames int
}

// Core processes FrameBatch messages one at a time. It is not safe for
// concurrent use; a worker owns one.
type Core struct {
	b      *Batch
	win    *Window
	order  []uint32
	added  int // keys this batch added to the window (for Rollback)
	outs   []outBuf
	nouts  int
	result []Output
}

type outBuf struct {
	source []byte
	body   []byte
	data   []byte
	n      int
}

// NewCore returns a core with all its buffers allocated up front.
func NewCore(cfg CoreConfig) *Core {
	if cfg.MaxFrames <= 0 {
		cfg.MaxFrames = schemas.MaxFramesPerBatch
	}
	if cfg.ArenaBytes <= 0 {
		cfg.ArenaBytes = 4 << 20
	}
	if cfg.Window <= 0 {
		cfg.Window = 1 << 17
	}
	cfg.Window = max(cfg.Window, 2*cfg.MaxFrames) // a batch never evicts its own keys
	return &Core{b: newBatch(cfg.MaxFrames, cfg.ArenaBytes), win: NewWindow(cfg.Window),
		order: make([]uint32, 0, cfg.MaxFrames), outs: make([]outBuf, 4), result: make([]Output, 0, 4)}
}

// Batch exposes the decoded batch (for tests and the audit's stage benchmarks).
func (c *Core) Batch() *Batch { return c.b }

// Arena is the batch arena.
func (c *Core) Arena() *Arena { return c.b.arena }

// Process decodes msg, validates, de-duplicates and orders its frames. It
// returns schemas.ErrMalformed (wrapped) for a message that does not
// decode; the window is then unchanged.
func (c *Core) Process(msg []byte) (Result, error) {
	if err := c.b.decode(msg); err != nil {
		return Result{}, err
	}
	return c.run(), nil
}

// run is validate → dedup → sort over the decoded batch.
func (c *Core) run() Result {
	hs := c.b.Headers
	res := Result{In: len(hs)}
	c.order, c.added = c.order[:0], 0
	for i := range hs {
		h := &hs[i]
		if h.Flags&FlagCRCFailed != 0 {
			res.Invalid++
			continue
		}
		if !c.win.Insert(h.key()) {
			res.Duplicates++
			continue
		}
		c.added++
		c.order = append(c.order, uint32(i))
		if h.Flags&FlagEmergency != 0 || c.b.Prio[i] == prioEmergency {
			res.Emergency++
		}
	}
	slices.SortStableFunc(c.order, func(a, b uint32) int { return cmp.Compare(hs[a].TimestampMs, hs[b].TimestampMs) })
	res.Out = len(c.order)
	return res
}

// Order is the indices of the batch's valid, unique frames in timestamp order.
func (c *Core) Order() []uint32 { return c.order }

// Commit makes the batch's keys part of the window for good: call it once
// its outputs are stored.
func (c *Core) Commit() { c.added = 0 }

// Rollback forgets the batch's keys (its outputs were not stored and the
// input will be redelivered).
func (c *Core) Rollback() {
	c.win.DropNewest(c.added)
	c.added = 0
}

// AppendKeys appends the keys of the batch's unique frames (those it
// added to the window) to dst, so they can be forgotten later with Forget
// after the core has moved on to other batches.
func (c *Core) AppendKeys(dst []Key) []Key {
	for _, i := range c.order {
		dst = append(dst, c.b.Headers[i].key())
	}
	return dst
}

// Forget removes keys (from AppendKeys of a committed batch whose outputs
// turned out not to be stored) from the window, so the redelivered batch
// is processed again. Unlike Rollback it works after later batches were
// processed; see Window.Forget for its one cost.
func (c *Core) Forget(keys []Key) {
	for _, k := range keys {
		c.win.Forget(k)
	}
}

// Encode writes the ordered frames as one FrameBatch per source (the batch
// station is the source id), in order of first appearance.
func (c *Core) Encode() []Output {
	for i := range c.outs[:c.nouts] {
		o := &c.outs[i]
		o.body, o.n, o.source = o.body[:0], 0, nil
	}
	c.nouts = 0
	last := -1
	b := c.b
	var f schemas.RawFrame
	for _, i := range c.order {
		src := b.bytes(b.Source[i])
		if len(src) == 0 {
			src = b.bytes(b.Station[i])
		}
		j := last
		if j < 0 || !bytes.Equal(c.outs[j].source, src) {
			j = c.outFor(src)
			last = j
		}
		h := &b.Headers[i]
		f = schemas.RawFrame{StationID: b.bytes(b.Station[i]), SourceID: b.bytes(b.Source[i]),
			SourceKind: kindBytes[b.Kind[i]], Priority: prioBytes[b.Prio[i]], Sequence: h.Sequence,
			TimestampMs: h.TimestampMs, SatelliteID: h.SatelliteID, Flags: h.Flags,
			Payload: b.bytes(b.Payload[i]), Tle: b.bytes(b.Tle[i])}
		o := &c.outs[j]
		o.body = schemas.AppendRawFrame(o.body, &f)
		o.n++
	}
	c.result = c.result[:0]
	for i := range c.outs[:c.nouts] {
		o := &c.outs[i]
		o.data = schemas.AppendFrameBatchHeaderBytes(o.data[:0], o.source, o.n)
		o.data = append(o.data, o.body...)
		c.result = append(c.result, Output{Source: o.source, Data: o.data, Frames: o.n})
	}
	return c.result
}

func (c *Core) outFor(src []byte) int {
	for j := range c.outs[:c.nouts] {
		if bytes.Equal(c.outs[j].source, src) {
			return j
		}
	}
	if c.nouts == len(c.outs) {
		c.outs = append(c.outs, outBuf{})
	}
	c.outs[c.nouts].source = src
	c.nouts++
	return c.nouts - 1
}

var (
	kindBytes = [...][]byte{nil, []byte("live_uplink"), []byte("archived_replay"), []byte("sensor")}
	prioBytes = [...][]byte{nil, []byte("routine"), []byte("emergency")}
)
