package sstable

import (
	"sync"
	"sync/atomic"
)

// Cache is an LRU cache of decoded data blocks keyed by (table id, block
// offset), bounded in bytes and shared by all readers of one engine. A nil
// *Cache caches nothing. Safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	m        map[cacheKey]*cacheEntry
	head     cacheEntry // sentinel of the LRU ring; head.next is newest

	hits, misses atomic.Int64
}

type cacheKey struct {
	table uint64
	off   uint64
}

type cacheEntry struct {
	key        cacheKey
	blk        Block
	size       int64
	prev, next *cacheEntry
}

// NewCache returns a cache holding up to capacity bytes of blocks.
func NewCache(capacity int64) *Cache {
	c := &Cache{capacity: capacity, m: map[cacheKey]*cacheEntry{}}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *Cache) get(k cacheKey) (Block, bool) {
	if c == nil {
		return Block{}, false
	}
	c.mu.Lock()
	e, ok := c.m[k]
	if ok && c.head.next != e {
		e.prev.next, e.next.prev = e.next, e.prev
		e.next, e.prev = c.head.next, &c.head
		c.head.next.prev = e
		c.head.next = e
	}
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		return e.blk, true
	}
	c.misses.Add(1)
	return Block{}, false
}

func (c *Cache) put(k cacheKey, b Block) {
	if c == nil || c.capacity <= 0 {
		return
	}
	size := b.memSize()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	e := &cacheEntry{key: k, blk: b, size: size, prev: &c.head, next: c.head.next}
	c.head.next.prev = e
	c.head.next = e
	c.m[k] = e
	c.used += size
	for c.used > c.capacity && c.head.prev != &c.head {
		old := c.head.prev
		old.prev.next, old.next.prev = &c.head, old.prev
		delete(c.m, old.key)
		c.used -= old.size
	}
}

// evictTable drops every block of table (called when a table is deleted).
func (c *Cache) evictTable(table uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if k.table == table {
			e.prev.next, e.next.prev = e.next, e.prev
			delete(c.m, k)
			c.used -= e.size
		}
	}
}

// CacheStats are a cache's counters.
type CacheStats struct {
	Hits, Misses int64
	Bytes        int64
	Blocks       int
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Bytes: c.used, Blocks: len(c.m)}
}
