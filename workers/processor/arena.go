package processor

// Arena is one pre-sized slab that a batch's payloads and ids are copied
// into; Reset frees everything at once by rewinding the offset. It grows
// (doubling) only when a batch does not fit, so after warm-up it never
// allocates.
type Arena struct {
	slab []byte
	off  int
}

// NewArena returns an arena of the given capacity.
func NewArena(capacity int) *Arena { return &Arena{slab: make([]byte, capacity)} }

// Add copies b into the arena and returns its offset.
func (a *Arena) Add(b []byte) uint32 {
	if a.off+len(b) > len(a.slab) {
		a.grow(len(b))
	}
	off := a.off
	a.off += copy(a.slab[a.off:], b)
	return uint32(off)
}

func (a *Arena) grow(need int) {
	n := max(2*len(a.slab), a.off+need)
	s := make([]byte, n)
	copy(s, a.slab[:a.off])
	a.slab = s
}

// Bytes returns the n bytes at off.
func (a *Arena) Bytes(off uint32, n uint32) []byte { return a.slab[off : off+n] }

// Used is how many bytes the current batch holds.
func (a *Arena) Used() int { return a.off }

// Cap is the slab's size.
func (a *Arena) Cap() int { return len(a.slab) }

// Reset frees every allocation of the batch.
func (a *Arena) Reset() { a.off = 0 }
