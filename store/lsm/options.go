package lsm

import (
	"log/slog"
	"time"

	"github.com/meridian-ops/meridian/store/vfs"
	"github.com/meridian-ops/meridian/store/wal"
)

// Options configure a DB. The zero value works: 4 MiB memtable, 4 KiB
// blocks, 10 bloom bits per key, 8 MiB block cache, L0 -> L1 compaction at
// 4 tables, fsync on every Apply.
type Options struct {
	FS vfs.FS // default vfs.Default

	// MemtableSize freezes the memtable once it holds this many bytes.
	MemtableSize int64
	// MaxImmutable is how many frozen memtables may wait for a flush
	// before writes stall (default 2).
	MaxImmutable int
	// BlockSize is the SSTable data-block size (default 4096).
	BlockSize int
	// BitsPerKey sizes bloom filters (default 10); negative disables them.
	BitsPerKey int
	// BlockCacheSize bounds the block cache in bytes (default 8 MiB);
	// negative disables it.
	BlockCacheSize int64
	// L0CompactionTrigger compacts L0 into L1 at this many L0 tables
	// (default 4).
	L0CompactionTrigger int
	// TargetFileSize splits compaction output tables (default 2 MiB).
	TargetFileSize int64
	// LevelBaseSize is L1's size budget; each deeper level gets 10x
	// (default 16 MiB).
	LevelBaseSize int64
	// DisableAutoCompaction leaves compaction to explicit Compact calls.
	// Flushes still run in the background.
	DisableAutoCompaction bool

	// Sync is the WAL fsync policy (default wal.SyncAlways).
	Sync wal.SyncPolicy
	// SyncInterval is the period for wal.SyncInterval (default 5 ms).
	SyncInterval time.Duration
	// WALSegmentSize rotates WAL segments past this size (default 64 MiB);
	// every memtable freeze also rotates.
	WALSegmentSize int64

	// NewCompactionFilter, if set, is called at the start of every
	// compaction; the returned filter sees each surviving entry.
	NewCompactionFilter func(CompactionInfo) CompactionFilter

	// Logger receives flush/compaction/recovery events (default: discard).
	Logger *slog.Logger
}

// CompactionInfo describes a compaction to a CompactionFilter.
type CompactionInfo struct {
	// InputLevel and OutputLevel: L0 -> L1, or Ln -> Ln+1.
	InputLevel, OutputLevel int
	// Bottommost is true when no deeper level holds keys in the
	// compaction's range, so dropped entries cannot resurface from below.
	Bottommost bool
}

// Decision is a CompactionFilter's verdict on one entry.
type Decision int

const (
	// Keep writes the entry to the output.
	Keep Decision = iota
	// Drop deletes the key: at the bottommost level the entry disappears;
	// above it a tombstone is written instead, so that older versions of the
	// key in deeper levels cannot reappear.
	Drop
)

// CompactionFilter is consulted for every live (non-tombstone) entry a
// compaction is about to write, in ascending key order. The MVCC layer uses
// it to garbage-collect versions older than its low watermark. Calls for
// one compaction come from one goroutine; filters of different
// compactions never run concurrently. key and value are valid only during
// the call.
type CompactionFilter interface {
	Filter(key, value []byte) Decision
}

func (o *Options) withDefaults() Options {
	c := *o
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.MemtableSize <= 0 {
		c.MemtableSize = 4 << 20
	}
	if c.MaxImmutable <= 0 {
		c.MaxImmutable = 2
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 4096
	}
	if c.BitsPerKey == 0 {
		c.BitsPerKey = 10
	}
	if c.BlockCacheSize == 0 {
		c.BlockCacheSize = 8 << 20
	}
	if c.L0CompactionTrigger <= 0 {
		c.L0CompactionTrigger = 4
	}
	if c.TargetFileSize <= 0 {
		c.TargetFileSize = 2 << 20
	}
	if c.LevelBaseSize <= 0 {
		c.LevelBaseSize = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
