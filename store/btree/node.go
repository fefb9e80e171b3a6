package btree

import (
	"encoding/binary"
	"fmt"

	"github.com/meridian-ops/meridian/store/pagefile"
)

// Node page body, little-endian, after the 24-byte pagefile header (whose
// type byte says leaf or internal):
//
//	offset size              field
//	    24    1              level      0 for leaves, parent = child + 1
//	    25    1              reserved
//	    26    2              n          keys in use
//	    28    4              next       leaf: right sibling page id (0 = none)
//	    32    4              prev       leaf: left sibling page id (0 = none)
//	    36    4×cap          keys       u32 NORAD ids, strictly increasing
//	leaf:
//	    36+4×cap  V×cap      values     fixed-size values, values[i] for keys[i]
//	internal:
//	    36+4×cap  4×(cap+1)  children   child page ids; children[i] holds keys
//	                                    k with keys[i-1] <= k < keys[i]
//
// Keys and values live in separate arrays so a binary search touches only
// the keys. Capacities follow from the value size V:
//
//	leaf cap     = (4096-36) / (4+V)     47 for V=82 (TLE records), 406 for V=6 (RIDs)
//	internal cap = (4096-36-4) / 8       507
const (
	offLevel = pagefile.HeaderSize
	offN     = offLevel + 2
	offNext  = offLevel + 4
	offPrev  = offLevel + 8
	offKeys  = offLevel + 12

	innerCap = (pagefile.PageSize - offKeys - 4) / 8
)

// layout is the node geometry for one value size.
type layout struct {
	vsize   int
	leafCap int
	valOff  int // leaf values
	kidOff  int // internal children
}

func newLayout(vsize int) layout {
	lc := (pagefile.PageSize - offKeys) / (4 + vsize)
	return layout{vsize: vsize, leafCap: lc, valOff: offKeys + 4*lc, kidOff: offKeys + 4*innerCap}
}

// Node is a read-only view of one B+ tree node page; it copies nothing.
type Node struct {
	b     []byte
	lay   *layout
	n     int
	level int
}

// DecodeNode validates page (a full page, as read from disk) as a node of a
// tree with the given value size and returns a view of it. It returns
// ErrCorrupt for anything inconsistent and never panics.
func DecodeNode(page []byte, valueSize int) (Node, error) {
	if valueSize < 0 || valueSize > MaxValueSize {
		return Node{}, fmt.Errorf("%w: value size %d", ErrValueSize, valueSize)
	}
	if len(page) != pagefile.PageSize {
		return Node{}, fmt.Errorf("%w: node page of %d bytes", ErrCorrupt, len(page))
	}
	lay := newLayout(valueSize)
	return lay.decode(page)
}

func (l *layout) decode(b []byte) (Node, error) {
	if len(b) != pagefile.PageSize {
		return Node{}, fmt.Errorf("%w: node page of %d bytes", ErrCorrupt, len(b))
	}
	nd := Node{b: b, lay: l, n: int(binary.LittleEndian.Uint16(b[offN:])), level: int(b[offLevel])}
	switch pagefile.PageType(b) {
	case pagefile.TypeBTreeLeaf:
		if nd.level != 0 || nd.n > l.leafCap {
			return Node{}, fmt.Errorf("%w: leaf %d: level %d, %d keys (cap %d)", ErrCorrupt, pagefile.ID(b), nd.level, nd.n, l.leafCap)
		}
	case pagefile.TypeBTreeInner:
		if nd.level == 0 || nd.n > innerCap {
			return Node{}, fmt.Errorf("%w: internal node %d: level %d, %d keys (cap %d)", ErrCorrupt, pagefile.ID(b), nd.level, nd.n, innerCap)
		}
	default:
		return Node{}, fmt.Errorf("%w: page %d is a %v page, not a node", ErrCorrupt, pagefile.ID(b), pagefile.PageType(b))
	}
	return nd, nil
}

// Leaf reports whether the node is a leaf.
func (nd Node) Leaf() bool { return nd.level == 0 }

// Level is 0 for leaves and one more than its children for internal nodes.
func (nd Node) Level() int { return nd.level }

// Len returns the number of keys.
func (nd Node) Len() int { return nd.n }

// Key returns key i (0 <= i < Len).
func (nd Node) Key(i int) uint32 { return binary.LittleEndian.Uint32(nd.b[offKeys+4*i:]) }

// Value returns the value of leaf key i, borrowed from the page.
func (nd Node) Value(i int) []byte {
	o := nd.lay.valOff + i*nd.lay.vsize
	return nd.b[o : o+nd.lay.vsize : o+nd.lay.vsize]
}

// Child returns child page id i (0 <= i <= Len) of an internal node.
func (nd Node) Child(i int) uint32 { return binary.LittleEndian.Uint32(nd.b[nd.lay.kidOff+4*i:]) }

// Next returns the right sibling of a leaf (0 = none).
func (nd Node) Next() uint32 { return binary.LittleEndian.Uint32(nd.b[offNext:]) }

// Prev returns the left sibling of a leaf (0 = none).
func (nd Node) Prev() uint32 { return binary.LittleEndian.Uint32(nd.b[offPrev:]) }

// Search returns the first index whose key is >= key, and whether that key
// equals key.
func (nd Node) Search(key uint32) (int, bool) {
	keys := nd.b[offKeys : offKeys+4*nd.n]
	lo, hi := 0, nd.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if binary.LittleEndian.Uint32(keys[4*m:]) < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < nd.n && binary.LittleEndian.Uint32(keys[4*lo:]) == key
}

// Route returns the index of the child of an internal node that covers key:
// the number of keys <= key.
func (nd Node) Route(key uint32) int {
	keys := nd.b[offKeys : offKeys+4*nd.n]
	lo, hi := 0, nd.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if binary.LittleEndian.Uint32(keys[4*m:]) <= key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Writers. b must be a node page of the layout; callers keep n <= cap.

func initNode(b []byte, id uint32, level int) {
	t := pagefile.TypeBTreeLeaf
	if level > 0 {
		t = pagefile.TypeBTreeInner
	}
	pagefile.Init(b, id, t)
	b[offLevel] = byte(level)
}

func setN(b []byte, n int)             { binary.LittleEndian.PutUint16(b[offN:], uint16(n)) }
func setNext(b []byte, id uint32)      { binary.LittleEndian.PutUint32(b[offNext:], id) }
func setPrev(b []byte, id uint32)      { binary.LittleEndian.PutUint32(b[offPrev:], id) }
func setKey(b []byte, i int, k uint32) { binary.LittleEndian.PutUint32(b[offKeys+4*i:], k) }
func (l *layout) setChild(b []byte, i int, id uint32) {
	binary.LittleEndian.PutUint32(b[l.kidOff+4*i:], id)
}
func (l *layout) setValue(b []byte, i int, v []byte) {
	copy(b[l.valOff+i*l.vsize:l.valOff+(i+1)*l.vsize], v)
}

// leafInsertAt opens a gap at i in a leaf with n keys and stores (k, v).
func (l *layout) leafInsertAt(b []byte, n, i int, k uint32, v []byte) {
	copy(b[offKeys+4*(i+1):offKeys+4*(n+1)], b[offKeys+4*i:offKeys+4*n])
	vs := l.vsize
	copy(b[l.valOff+vs*(i+1):l.valOff+vs*(n+1)], b[l.valOff+vs*i:l.valOff+vs*n])
	setKey(b, i, k)
	l.setValue(b, i, v)
	setN(b, n+1)
}

// leafRemoveAt closes the gap at i in a leaf with n keys.
func (l *layout) leafRemoveAt(b []byte, n, i int) {
	copy(b[offKeys+4*i:offKeys+4*(n-1)], b[offKeys+4*(i+1):offKeys+4*n])
	vs := l.vsize
	copy(b[l.valOff+vs*i:l.valOff+vs*(n-1)], b[l.valOff+vs*(i+1):l.valOff+vs*n])
	clear(b[offKeys+4*(n-1) : offKeys+4*n])
	clear(b[l.valOff+vs*(n-1) : l.valOff+vs*n])
	setN(b, n-1)
}
