package memtable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// Kind says whether an entry sets a value or deletes the key (tombstone).
type Kind uint8

// Entry kinds; the values match store/sstable's.
const (
	KindDelete Kind = 0
	KindSet    Kind = 1
)

const (
	maxHeight = 20
	// pBranch: each level holds 1/4 of the one below.
	nodeOverhead = 64
	arenaChunk   = 1 << 20
	nodeChunk    = 1024
	linkChunk    = 4096
)

// ErrFrozen is the panic value for Add on a frozen table.
var ErrFrozen = errors.New("memtable: add to frozen table")

type node struct {
	prefix     uint64 // first 8 key bytes, big-endian, zero-padded
	key, value []byte
	lsn        uint64
	kind       Kind
	next       []atomic.Pointer[node]
}

// Table is a skiplist memtable. Create with New.
type Table struct {
	head   node
	height atomic.Int32
	size   atomic.Int64
	count  atomic.Int64
	maxLSN atomic.Uint64
	frozen atomic.Bool

	// writer-only state
	rnd   uint64
	tail  [maxHeight]*node // last node per level, for AppendSorted
	added bool             // Add was used: tail is stale
	arena []byte
	nodes []node
	links []atomic.Pointer[node]
	prev  [maxHeight]*node
}

// New returns an empty table.
func New() *Table {
	t := &Table{rnd: 0x9E3779B97F4A7C15}
	t.head.next = make([]atomic.Pointer[node], maxHeight)
	t.height.Store(1)
	return t
}

// compare orders (a.key, a.lsn) against (key, lsn): key ascending, LSN
// descending.
func compare(n *node, key []byte, lsn uint64) int {
	return compareP(n, keyPrefix(key), key, lsn)
}

// keyPrefix packs the first 8 bytes of key so most comparisons need not
// touch the key bytes in the arena.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var p uint64
	for i, c := range key {
		p |= uint64(c) << (56 - 8*i)
	}
	return p
}

func compareP(n *node, prefix uint64, key []byte, lsn uint64) int {
	if n.prefix != prefix {
		if n.prefix < prefix {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(n.key, key); c != 0 {
		return c
	}
	switch {
	case n.lsn > lsn:
		return -1
	case n.lsn < lsn:
		return 1
	}
	return 0
}

func (t *Table) randomHeight() int {
	// xorshift64; two random bits per level give p = 1/4.
	t.rnd ^= t.rnd << 13
	t.rnd ^= t.rnd >> 7
	t.rnd ^= t.rnd << 17
	r := t.rnd
	h := 1
	for h < maxHeight && r&1 == 0 {
		h++
		r >>= 1
	}
	return h
}

func (t *Table) alloc(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, n)
	}
	if len(t.arena) < n {
		t.arena = make([]byte, arenaChunk)
	}
	b := t.arena[:n:n]
	t.arena = t.arena[n:]
	return b
}

// Add inserts a version of key. A second Add of the same key and LSN (a
// batch that writes a key twice) sorts before the first, so it wins.
// Single writer only.
func (t *Table) Add(key []byte, lsn uint64, kind Kind, value []byte) {
	if t.frozen.Load() {
		panic(ErrFrozen)
	}
	t.added = true
	n, h := t.newNode(key, lsn, kind, value)
	p := n.prefix
	listH := int(t.height.Load())
	x := &t.head
	for lvl := max(listH, h) - 1; lvl >= 0; lvl-- {
		for {
			nx := x.next[lvl].Load()
			if nx == nil || compareP(nx, p, key, lsn) >= 0 {
				break
			}
			x = nx
		}
		t.prev[lvl] = x
	}
	t.link(n, h, &t.prev)
}

// ErrNotSorted is the panic value for AppendSorted out of order or after Add.
var ErrNotSorted = errors.New("memtable: AppendSorted out of order")

// AppendSorted adds an entry that sorts after every entry already in the
// table (key ascending, then LSN descending) without searching: recovery
// sorts the replayed WAL entries and builds the skiplist in one pass, which
// is several times faster than random-order Adds. It must not follow Add.
func (t *Table) AppendSorted(key []byte, lsn uint64, kind Kind, value []byte) {
	if t.frozen.Load() {
		panic(ErrFrozen)
	}
	if last := t.tail[0]; t.added || (last != nil && compare(last, key, lsn) >= 0 && !(bytes.Equal(last.key, key) && last.lsn == lsn)) {
		panic(ErrNotSorted)
	}
	n, h := t.newNode(key, lsn, kind, value)
	var prev [maxHeight]*node
	for lvl := 0; lvl < max(h, int(t.height.Load())); lvl++ {
		prev[lvl] = t.tail[lvl]
		if prev[lvl] == nil {
			prev[lvl] = &t.head
		}
	}
	t.link(n, h, &prev)
	for lvl := 0; lvl < h; lvl++ {
		t.tail[lvl] = n
	}
}

func (t *Table) newNode(key []byte, lsn uint64, kind Kind, value []byte) (*node, int) {
	buf := t.alloc(len(key) + len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	if len(t.nodes) == 0 {
		t.nodes = make([]node, nodeChunk)
	}
	n := &t.nodes[0]
	t.nodes = t.nodes[1:]
	h := t.randomHeight()
	if len(t.links) < h {
		t.links = make([]atomic.Pointer[node], linkChunk)
	}
	n.next = t.links[:h:h]
	t.links = t.links[h:]
	n.key, n.value, n.lsn, n.kind = buf[:len(key):len(key)], buf[len(key):], lsn, kind
	n.prefix = keyPrefix(key)
	return n, h
}

// link publishes n (height h) after prev[0..h).
func (t *Table) link(n *node, h int, prev *[maxHeight]*node) {
	for lvl := 0; lvl < h; lvl++ {
		n.next[lvl].Store(prev[lvl].next[lvl].Load())
	}
	// Publish bottom-up: a reader that finds n on a high level can always
	// continue from it on the lower ones.
	for lvl := 0; lvl < h; lvl++ {
		prev[lvl].next[lvl].Store(n)
	}
	if h > int(t.height.Load()) {
		t.height.Store(int32(h))
	}
	key, value, lsn := n.key, n.value, n.lsn
	t.size.Add(int64(len(key) + len(value) + nodeOverhead + 8*h))
	t.count.Add(1)
	if lsn > t.maxLSN.Load() {
		t.maxLSN.Store(lsn)
	}
}

// seek returns the first node >= (key, lsn).
func (t *Table) seek(key []byte, lsn uint64) *node {
	p := keyPrefix(key)
	x := &t.head
	for lvl := int(t.height.Load()) - 1; lvl >= 0; lvl-- {
		for {
			nx := x.next[lvl].Load()
			if nx == nil || compareP(nx, p, key, lsn) >= 0 {
				break
			}
			x = nx
		}
	}
	return x.next[0].Load()
}

// Get returns the newest version of key with LSN <= snap. found is false if
// the table has no such version; a found tombstone has kind KindDelete.
func (t *Table) Get(key []byte, snap uint64) (value []byte, kind Kind, found bool) {
	n := t.seek(key, snap)
	if n == nil || !bytes.Equal(n.key, key) {
		return nil, 0, false
	}
	return n.value, n.kind, true
}

// Size is the approximate memory the entries use, in bytes.
func (t *Table) Size() int64 { return t.size.Load() }

// Len is the number of entries (versions).
func (t *Table) Len() int { return int(t.count.Load()) }

// MaxLSN is the highest LSN added.
func (t *Table) MaxLSN() uint64 { return t.maxLSN.Load() }

// Freeze makes the table immutable.
func (t *Table) Freeze() { t.frozen.Store(true) }

// Frozen reports whether Freeze was called.
func (t *Table) Frozen() bool { return t.frozen.Load() }

// Check verifies the skiplist invariants: every level is sorted by (key
// ascending, LSN descending) and is a sublist of the level below, and, for
// a frozen table, the entry count matches.
func (t *Table) Check() error {
	h := int(t.height.Load())
	var levels [maxHeight]map[*node]bool
	for lvl := 0; lvl < h; lvl++ {
		levels[lvl] = map[*node]bool{}
		var prev *node
		for n := t.head.next[lvl].Load(); n != nil; n = n.next[lvl].Load() {
			if prev != nil && compare(prev, n.key, n.lsn) > 0 {
				return fmt.Errorf("memtable: level %d out of order at %q@%d", lvl, n.key, n.lsn)
			}
			if lvl > 0 && !levels[lvl-1][n] {
				return fmt.Errorf("memtable: level %d node %q missing below", lvl, n.key)
			}
			levels[lvl][n] = true
			prev = n
		}
	}
	// The count is exact only once no writer can race the walk.
	if t.Frozen() && len(levels[0]) != t.Len() {
		return fmt.Errorf("memtable: %d nodes linked, %d added", len(levels[0]), t.Len())
	}
	return nil
}

// Iterator walks the newest version <= its snapshot of each key in order.
// Position it with First or SeekGE before use.
type Iterator struct {
	t    *Table
	snap uint64
	n    *node
}

// Iter returns an iterator that sees versions with LSN <= snap.
func (t *Table) Iter(snap uint64) *Iterator { return &Iterator{t: t, snap: snap} }

// settle moves forward from n to the first visible version.
func (it *Iterator) settle(n *node) bool {
	for n != nil && n.lsn > it.snap {
		n = n.next[0].Load()
	}
	it.n = n
	return n != nil
}

// First positions at the smallest key.
func (it *Iterator) First() bool { return it.settle(it.t.head.next[0].Load()) }

// SeekGE positions at the smallest key >= key.
func (it *Iterator) SeekGE(key []byte) bool { return it.settle(it.t.seek(key, it.snap)) }

// Next moves to the next key, skipping older versions of the current one.
func (it *Iterator) Next() bool {
	if it.n == nil {
		return false
	}
	cur := it.n
	n := cur.next[0].Load()
	for n != nil && n.prefix == cur.prefix && bytes.Equal(n.key, cur.key) {
		n = n.next[0].Load()
	}
	return it.settle(n)
}

// Valid reports whether the iterator is at an entry.
func (it *Iterator) Valid() bool { return it.n != nil }

// Key returns the current key.
func (it *Iterator) Key() []byte { return it.n.key }

// Value returns the current value (empty for tombstones).
func (it *Iterator) Value() []byte { return it.n.value }

// Kind returns the current entry's kind.
func (it *Iterator) Kind() Kind { return it.n.kind }

// LSN returns the current entry's LSN.
func (it *Iterator) LSN() uint64 { return it.n.lsn }
