package processor

// Window remembers the most recent keys (up to its capacity) in an
// open-addressing hash set with linear probing, plus a ring that says
// which key to forget next. Insert, lookup and removal are O(1) and never
// allocate.
type Window struct {
	slots []slot
	mask  uint64
	ring  []Key // insertion order; the oldest is forgotten first
	head  int   // index of the oldest key in ring
	n     int   // keys held
}

// slot is 16 bytes (4 per cache line): the key's fields plus a used flag
// in what would otherwise be padding.
type slot struct {
	seq  uint64
	sat  uint32
	used uint32
}

func (s *slot) key() Key { return Key{s.sat, s.seq} }

// NewWindow remembers up to capacity keys.
func NewWindow(capacity int) *Window {
	capacity = max(capacity, 1)
	size := 1
	for size < 2*capacity {
		size <<= 1
	}
	return &Window{slots: make([]slot, size), mask: uint64(size - 1), ring: make([]Key, capacity)}
}

func hashKey(k Key) uint64 {
	h := uint64(k.SatelliteID)*0x9E3779B97F4A7C15 ^ k.Sequence*0xC2B2AE3D27D4EB4F
	h ^= h >> 31
	h *= 0x94D049BB133111EB
	return h ^ h>>29
}

// Contains reports whether k is remembered.
func (w *Window) Contains(k Key) bool {
	for i := hashKey(k) & w.mask; ; i = (i + 1) & w.mask {
		s := &w.slots[i]
		if s.used == 0 {
			return false
		}
		if s.seq == k.Sequence && s.sat == k.SatelliteID {
			return true
		}
	}
}

// Add remembers k (which must not be held), forgetting the oldest key when
// full.
func (w *Window) Add(k Key) {
	if !w.Insert(k) {
		panic("processor: Window.Add of a key already held")
	}
}

// Insert remembers k and reports true, or reports false if k is already
// held: one probe sequence decides and inserts (the dedup hot path).
func (w *Window) Insert(k Key) bool {
	i := hashKey(k) & w.mask
	for ; w.slots[i].used != 0; i = (i + 1) & w.mask {
		if s := &w.slots[i]; s.seq == k.Sequence && s.sat == k.SatelliteID {
			return false
		}
	}
	if w.n == len(w.ring) {
		// Forget the oldest first; the removal may shift keys into the hole
		// we found, so probe again for an empty slot.
		w.remove(w.ring[w.head])
		w.head = (w.head + 1) % len(w.ring)
		w.n--
		i = hashKey(k) & w.mask
		for w.slots[i].used != 0 {
			i = (i + 1) & w.mask
		}
	}
	w.slots[i] = slot{seq: k.Sequence, sat: k.SatelliteID, used: 1}
	w.ring[(w.head+w.n)%len(w.ring)] = k
	w.n++
	return true
}

// DropNewest forgets the n most recently added keys (a rolled-back batch).
func (w *Window) DropNewest(n int) {
	for ; n > 0 && w.n > 0; n-- {
		w.n--
		w.remove(w.ring[(w.head+w.n)%len(w.ring)])
	}
}

// Forget removes k from the set at once; its place in the insertion order
// stays until it would have been evicted. If k is inserted again before
// then, that older place's eviction forgets the new insertion early: the
// window may then let one later duplicate of k through, never drop a new
// frame.
func (w *Window) Forget(k Key) { w.remove(k) }

// Len is the number of keys held.
func (w *Window) Len() int { return w.n }

// remove deletes k with backward-shift deletion (no tombstones).
func (w *Window) remove(k Key) {
	i := hashKey(k) & w.mask
	for {
		s := &w.slots[i]
		if s.used == 0 {
			return
		}
		if s.seq == k.Sequence && s.sat == k.SatelliteID {
			break
		}
		i = (i + 1) & w.mask
	}
	for j := (i + 1) & w.mask; ; j = (j + 1) & w.mask {
		s := &w.slots[j]
		if s.used == 0 {
			break
		}
		home := hashKey(s.key()) & w.mask
		// Move s back to the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			w.slots[i] = *s
			i = j
		}
	}
	w.slots[i] = slot{}
}
