package btree

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/meridian-ops/meridian/store/bufpool"
	"github.com/meridian-ops/meridian/store/pagefile"
	"github.com/meridian-ops/meridian/store/tle"
)

// MaxValueSize is the largest value a leaf can hold (at least 4 per leaf).
const MaxValueSize = (pagefile.PageSize-offKeys)/4 - 4

// maxHeight bounds the tree height; far above what 2^32 keys need.
const maxHeight = 32

var (
	// ErrCorrupt is returned when a page of the tree is not what the tree
	// structure says it must be (wrong type or level, impossible counts,
	// keys out of order, a cycle).
	ErrCorrupt = errors.New("btree: corrupt tree")
	// ErrValueSize is returned when a value's length differs from the tree's
	// value size, or when opening a tree with a different value size.
	ErrValueSize = errors.New("btree: wrong value size")
	// ErrUnsorted is returned by BulkLoad when keys are not strictly
	// increasing.
	ErrUnsorted = errors.New("btree: bulk load input not strictly increasing")
	// ErrNotEmpty is returned by BulkLoad on a tree that already has keys.
	ErrNotEmpty = errors.New("btree: bulk load into a non-empty tree")
)

// Options configures a tree. The zero value stores 82-byte TLE records.
type Options struct {
	// ValueSize is the fixed length of every value; 0 means
	// tle.RecordSize. Ignored when opening an existing tree unless nonzero,
	// in which case it must match.
	ValueSize int
}

// Stats describes the shape of a tree.
type Stats struct {
	Height     int     // levels, 1 when the root is a leaf
	Count      uint64  // keys
	Leaves     uint32  // leaf pages
	Inners     uint32  // internal pages
	LeafCap    int     // keys per full leaf
	FillFactor float64 // Count / (Leaves × LeafCap)
}

func (s Stats) String() string {
	return fmt.Sprintf("height=%d keys=%d leaves=%d internal=%d leaf-cap=%d fill=%.2f%%",
		s.Height, s.Count, s.Leaves, s.Inners, s.LeafCap, 100*s.FillFactor)
}

// Meta page body (page 0 of the tree's file), little-endian, after the
// 24-byte pagefile header:
//
//	offset size field
//	    24    8 magic      "OORBTREE"
//	    32    2 version    1
//	    34    2 value size
//	    36    4 root       page id
//	    40    1 height     1..32
//	    41    3 reserved
//	    44    8 count      keys
//	    52    4 leaves     leaf pages
//	    56    4 inners     internal pages
const (
	metaPage    = 0
	metaVersion = 1
)

var metaMagic = [8]byte{'O', 'O', 'R', 'B', 'T', 'R', 'E', 'E'}

type pathEnt struct {
	id  uint32
	idx int // child index taken
}

// Tree is a B+ tree from uint32 keys to fixed-size values.
type Tree struct {
	pool *bufpool.Pool
	lay  layout

	mu     sync.RWMutex
	root   uint32
	height int
	count  uint64
	leaves uint32
	inners uint32

	// Writer scratch, guarded by mu held for writing.
	path [maxHeight]pathEnt
	keys [innerCap + 1]uint32
	kids [innerCap + 2]uint32
}

// Open opens the tree stored in pool's file, creating an empty one (meta
// page 0 and an empty root leaf) if the file is empty.
func Open(ctx context.Context, pool *bufpool.Pool, opts Options) (*Tree, error) {
	vs := opts.ValueSize
	if vs == 0 {
		vs = tle.RecordSize
	}
	if vs < 0 || vs > MaxValueSize {
		return nil, fmt.Errorf("%w: %d (max %d)", ErrValueSize, vs, MaxValueSize)
	}
	t := &Tree{pool: pool}
	if pool.Pager().PageCount() == 0 {
		t.lay = newLayout(vs)
		m, err := pool.NewPage(ctx, pagefile.TypeMeta)
		if err != nil {
			return nil, err
		}
		if m.ID() != metaPage {
			pool.Unpin(m, false)
			return nil, fmt.Errorf("btree: meta page allocated as %d", m.ID())
		}
		pool.Unpin(m, true)
		r, err := pool.NewPage(ctx, pagefile.TypeBTreeLeaf)
		if err != nil {
			return nil, err
		}
		initNode(r.Data(), r.ID(), 0)
		t.root, t.height, t.leaves = r.ID(), 1, 1
		pool.Unpin(r, true)
		return t, t.writeMeta(ctx)
	}
	m, err := pool.Fetch(ctx, metaPage)
	if err != nil {
		return nil, fmt.Errorf("btree: read meta: %w", err)
	}
	defer pool.Unpin(m, false)
	b := m.Data()
	if pagefile.PageType(b) != pagefile.TypeMeta || [8]byte(b[24:32]) != metaMagic {
		return nil, fmt.Errorf("%w: page 0 is not a B+ tree meta page", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(b[32:]); v != metaVersion {
		return nil, fmt.Errorf("%w: meta version %d", ErrCorrupt, v)
	}
	stored := int(binary.LittleEndian.Uint16(b[34:]))
	if opts.ValueSize != 0 && stored != opts.ValueSize {
		return nil, fmt.Errorf("%w: tree has %d-byte values, opened for %d", ErrValueSize, stored, opts.ValueSize)
	}
	if stored > MaxValueSize {
		return nil, fmt.Errorf("%w: meta value size %d", ErrCorrupt, stored)
	}
	t.lay = newLayout(stored)
	t.root = binary.LittleEndian.Uint32(b[36:])
	t.height = int(b[40])
	t.count = binary.LittleEndian.Uint64(b[44:])
	t.leaves = binary.LittleEndian.Uint32(b[52:])
	t.inners = binary.LittleEndian.Uint32(b[56:])
	if t.height < 1 || t.height > maxHeight || t.root == metaPage || t.root >= pool.Pager().PageCount() {
		return nil, fmt.Errorf("%w: meta root %d height %d", ErrCorrupt, t.root, t.height)
	}
	return t, nil
}

func (t *Tree) writeMeta(ctx context.Context) error {
	m, err := t.pool.Fetch(ctx, metaPage)
	if err != nil {
		return err
	}
	b := m.Data()
	copy(b[24:32], metaMagic[:])
	binary.LittleEndian.PutUint16(b[32:], metaVersion)
	binary.LittleEndian.PutUint16(b[34:], uint16(t.lay.vsize))
	binary.LittleEndian.PutUint32(b[36:], t.root)
	b[40] = byte(t.height)
	binary.LittleEndian.PutUint64(b[44:], t.count)
	binary.LittleEndian.PutUint32(b[52:], t.leaves)
	binary.LittleEndian.PutUint32(b[56:], t.inners)
	t.pool.Unpin(m, true)
	return nil
}

// ValueSize returns the tree's fixed value length.
func (t *Tree) ValueSize() int { return t.lay.vsize }

// Stats returns the tree's shape.
func (t *Tree) Stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Stats{Height: t.height, Count: t.count, Leaves: t.leaves, Inners: t.inners, LeafCap: t.lay.leafCap}
	if t.leaves > 0 {
		s.FillFactor = float64(t.count) / (float64(t.leaves) * float64(t.lay.leafCap))
	}
	return s
}

// fetch pins page id and validates it as a node at the given level.
func (t *Tree) fetch(ctx context.Context, id uint32, level int) (*bufpool.Frame, Node, error) {
	if id == metaPage {
		return nil, Node{}, fmt.Errorf("%w: child pointer to the meta page", ErrCorrupt)
	}
	f, err := t.pool.Fetch(ctx, id)
	if err != nil {
		return nil, Node{}, err
	}
	nd, err := t.lay.decode(f.Data())
	if err == nil && nd.level != level {
		err = fmt.Errorf("%w: page %d at level %d, expected %d", ErrCorrupt, id, nd.level, level)
	}
	if err != nil {
		t.pool.Unpin(f, false)
		return nil, Node{}, err
	}
	return f, nd, nil
}

// descend walks from the root to the leaf covering key and returns it
// pinned. With record set it fills t.path (writers only).
func (t *Tree) descend(ctx context.Context, key uint32, record bool) (*bufpool.Frame, Node, error) {
	id := t.root
	for level := t.height - 1; ; level-- {
		f, nd, err := t.fetch(ctx, id, level)
		if err != nil {
			return nil, Node{}, err
		}
		if level == 0 {
			return f, nd, nil
		}
		i := nd.Route(key)
		if record {
			t.path[level] = pathEnt{id: id, idx: i}
		}
		id = nd.Child(i)
		t.pool.Unpin(f, false)
	}
}

// Get appends the value stored under key to dst and reports whether the key
// was found.
func (t *Tree) Get(ctx context.Context, key uint32, dst []byte) ([]byte, bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	f, nd, err := t.descend(ctx, key, false)
	if err != nil {
		return dst, false, err
	}
	i, ok := nd.Search(key)
	if ok {
		dst = append(dst, nd.Value(i)...)
	}
	t.pool.Unpin(f, false)
	return dst, ok, nil
}

// Scan calls fn for every key in [lo, hi] in increasing order until fn
// returns false. The value is borrowed: valid only during the call.
func (t *Tree) Scan(ctx context.Context, lo, hi uint32, fn func(key uint32, val []byte) bool) error {
	if lo > hi {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	f, nd, err := t.descend(ctx, lo, false)
	if err != nil {
		return err
	}
	i, _ := nd.Search(lo)
	last, first := uint32(0), true
	for visited := uint32(0); ; visited++ {
		for ; i < nd.n; i++ {
			k := nd.Key(i)
			if !first && k <= last {
				t.pool.Unpin(f, false)
				return fmt.Errorf("%w: key %d after %d in leaf %d", ErrCorrupt, k, last, f.ID())
			}
			if k > hi || !fn(k, nd.Value(i)) {
				t.pool.Unpin(f, false)
				return nil
			}
			last, first = k, false
		}
		next := nd.Next()
		t.pool.Unpin(f, false)
		if next == 0 {
			return nil
		}
		if visited > t.leaves {
			return fmt.Errorf("%w: leaf chain longer than %d leaves", ErrCorrupt, t.leaves)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if f, nd, err = t.fetch(ctx, next, 0); err != nil {
			return err
		}
		i = 0
	}
}

// All returns an iterator over every key and value in order (values
// borrowed). Iteration errors are reported through *errp if errp != nil.
func (t *Tree) All(ctx context.Context, errp *error) iter.Seq2[uint32, []byte] {
	return func(yield func(uint32, []byte) bool) {
		err := t.Scan(ctx, 0, ^uint32(0), yield)
		if errp != nil {
			*errp = err
		}
	}
}

// Put stores val under key, replacing any previous value.
//
// A split pins every page it will touch (the next leaf, the ancestors that
// change) and allocates every new page before modifying anything, so an I/O
// error or ErrAllPinned leaves the tree as it was.
func (t *Tree) Put(ctx context.Context, key uint32, val []byte) error {
	if len(val) != t.lay.vsize {
		return fmt.Errorf("%w: got %d bytes, tree holds %d", ErrValueSize, len(val), t.lay.vsize)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, nd, err := t.descend(ctx, key, true)
	if err != nil {
		return err
	}
	i, ok := nd.Search(key)
	b := f.Data()
	if ok {
		t.lay.setValue(b, i, val)
		t.pool.Unpin(f, true)
		return nil
	}
	if nd.n < t.lay.leafCap {
		t.lay.leafInsertAt(b, nd.n, i, key, val)
		t.pool.Unpin(f, true)
		t.count++
		return nil
	}
	sp := splitPlan{leaf: f}
	if err := t.planSplit(ctx, &sp, nd); err != nil {
		sp.release(t.pool, false)
		return err
	}
	sep, right := t.splitLeaf(&sp, nd, i, key, val)
	t.insertParent(&sp, sep, right)
	sp.release(t.pool, true)
	t.count++
	return nil
}

// splitPlan holds every frame a leaf split touches, pinned up front.
type splitPlan struct {
	leaf  *bufpool.Frame
	next  *bufpool.Frame                // right neighbour of the leaf, if any
	anc   [maxHeight]*bufpool.Frame     // ancestors by level that change
	fresh [maxHeight + 1]*bufpool.Frame // new pages: right leaf, inner splits, new root
	nanc  int                           // ancestors pinned (levels 1..nanc)
	nnew  int
	used  int // fresh pages consumed
}

func (sp *splitPlan) release(pool *bufpool.Pool, dirty bool) {
	pool.Unpin(sp.leaf, dirty)
	if sp.next != nil {
		pool.Unpin(sp.next, dirty)
	}
	for l := 1; l <= sp.nanc; l++ {
		pool.Unpin(sp.anc[l], dirty)
	}
	for _, f := range sp.fresh[:sp.nnew] {
		pool.Unpin(f, true) // formatted new pages; unused ones stay empty leaves
	}
}

// planSplit pins the ancestors up to the first one with room, the next leaf,
// and allocates one new page per node that will split (plus a new root).
func (t *Tree) planSplit(ctx context.Context, sp *splitPlan, leaf Node) error {
	need := 1 // the new right leaf
	rootSplits := true
	for level := 1; level < t.height; level++ {
		f, nd, err := t.fetch(ctx, t.path[level].id, level)
		if err != nil {
			return err
		}
		sp.anc[level], sp.nanc = f, level
		if nd.n < innerCap {
			rootSplits = false
			break
		}
		need++
	}
	if rootSplits {
		if t.height == maxHeight {
			return fmt.Errorf("%w: height limit %d", ErrCorrupt, maxHeight)
		}
		need++
	}
	if next := leaf.Next(); next != 0 {
		f, _, err := t.fetch(ctx, next, 0)
		if err != nil {
			return err
		}
		sp.next = f
	}
	for range need {
		f, err := t.pool.NewPage(ctx, pagefile.TypeBTreeLeaf)
		if err != nil {
			return err
		}
		initNode(f.Data(), f.ID(), 0)
		sp.fresh[sp.nnew] = f
		sp.nnew++
	}
	return nil
}

func (sp *splitPlan) take() *bufpool.Frame {
	f := sp.fresh[sp.used]
	sp.used++
	return f
}

// splitLeaf moves the upper half of the full leaf to a new right sibling,
// inserts (key, val) at index i into the proper half and returns the
// separator (first key of the right leaf) and the new page id.
func (t *Tree) splitLeaf(sp *splitPlan, nd Node, i int, key uint32, val []byte) (uint32, uint32) {
	rf := sp.take()
	l, r := sp.leaf.Data(), rf.Data()
	initNode(r, rf.ID(), 0)
	n, mid := nd.n, nd.n/2
	vs := t.lay.vsize
	copy(r[offKeys:offKeys+4*(n-mid)], l[offKeys+4*mid:offKeys+4*n])
	copy(r[t.lay.valOff:t.lay.valOff+vs*(n-mid)], l[t.lay.valOff+vs*mid:t.lay.valOff+vs*n])
	clear(l[offKeys+4*mid : offKeys+4*n])
	clear(l[t.lay.valOff+vs*mid : t.lay.valOff+vs*n])
	setN(l, mid)
	setN(r, n-mid)
	if i < mid {
		t.lay.leafInsertAt(l, mid, i, key, val)
	} else {
		t.lay.leafInsertAt(r, n-mid, i-mid, key, val)
	}
	setNext(r, nd.Next())
	setPrev(r, sp.leaf.ID())
	setNext(l, rf.ID())
	if sp.next != nil {
		setPrev(sp.next.Data(), rf.ID())
	}
	t.leaves++
	return binary.LittleEndian.Uint32(r[offKeys:]), rf.ID()
}

// insertParent inserts separator sep with right child right into the
// pinned ancestors, splitting upward and growing a new root as planned.
func (t *Tree) insertParent(sp *splitPlan, sep, right uint32) {
	for level := 1; ; level++ {
		if level == t.height {
			rf := sp.take()
			t.fillInner(rf.Data(), rf.ID(), t.height, []uint32{sep}, []uint32{t.root, right})
			t.root = rf.ID()
			t.height++
			t.inners++
			return
		}
		f := sp.anc[level]
		b, at := f.Data(), t.path[level].idx
		n := int(binary.LittleEndian.Uint16(b[offN:]))
		if n < innerCap {
			copy(b[offKeys+4*(at+1):offKeys+4*(n+1)], b[offKeys+4*at:offKeys+4*n])
			ko := t.lay.kidOff
			copy(b[ko+4*(at+2):ko+4*(n+2)], b[ko+4*(at+1):ko+4*(n+1)])
			setKey(b, at, sep)
			t.lay.setChild(b, at+1, right)
			setN(b, n+1)
			return
		}
		// Full: merge into scratch (n+1 keys, n+2 children) and split.
		nd := Node{b: b, lay: &t.lay, n: n, level: level}
		keys, kids := t.keys[:n+1], t.kids[:n+2]
		for j := 0; j < at; j++ {
			keys[j] = nd.Key(j)
		}
		keys[at] = sep
		for j := at; j < n; j++ {
			keys[j+1] = nd.Key(j)
		}
		for j := 0; j <= at; j++ {
			kids[j] = nd.Child(j)
		}
		kids[at+1] = right
		for j := at + 1; j <= n; j++ {
			kids[j+1] = nd.Child(j)
		}
		rf := sp.take()
		m := (n + 1) / 2 // keys[m] moves up
		t.fillInner(b, f.ID(), level, keys[:m], kids[:m+1])
		t.fillInner(rf.Data(), rf.ID(), level, keys[m+1:], kids[m+1:])
		sep, right = keys[m], rf.ID()
		t.inners++
	}
}

func (t *Tree) fillInner(b []byte, id uint32, level int, keys, kids []uint32) {
	initNode(b, id, level)
	for j, k := range keys {
		setKey(b, j, k)
	}
	for j, c := range kids {
		t.lay.setChild(b, j, c)
	}
	setN(b, len(keys))
}

// Delete removes key and reports whether it was present. Leaves are not
// rebalanced.
func (t *Tree) Delete(ctx context.Context, key uint32) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, nd, err := t.descend(ctx, key, false)
	if err != nil {
		return false, err
	}
	i, ok := nd.Search(key)
	if ok {
		t.lay.leafRemoveAt(f.Data(), nd.n, i)
		t.count--
	}
	t.pool.Unpin(f, ok)
	return ok, nil
}

// Flush writes the meta page and every dirty page to the file (no fsync).
func (t *Tree) Flush(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.writeMeta(ctx); err != nil {
		return err
	}
	return t.pool.Flush(ctx)
}

// Sync is Flush followed by an fsync of the file.
func (t *Tree) Sync(ctx context.Context) error {
	if err := t.Flush(ctx); err != nil {
		return err
	}
	return t.pool.Pager().Sync(ctx)
}
