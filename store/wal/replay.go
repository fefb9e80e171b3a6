package wal

import (
	"context"
	"fmt"

	"github.com/meridian-ops/meridian/store/vfs"
)

// ReplayResult describes what Replay found.
type ReplayResult struct {
	// LastLSN is the highest LSN in the log, or the after argument if the
	// log holds nothing above it. The next record must use LastLSN+1.
	LastLSN uint64
	// Records counts records delivered to fn (LSN > after).
	Records int
	// Segments counts segment files read.
	Segments int
	// TornBytes counts bytes cut from segment tails.
	TornBytes int64
}

// Replay reads the segments in dir in order and calls fn for every good
// record with an LSN above after. Torn tails are cut silently (counted in
// TornBytes); a gap between segments returns ErrCorrupt. An error from fn
// stops the replay and is returned wrapped.
func Replay(ctx context.Context, fs vfs.FS, dir string, after uint64, fn func(lsn uint64, payload []byte) error) (ReplayResult, error) {
	res := ReplayResult{LastLSN: after}
	segs, err := listSegments(fs, dir)
	if err != nil {
		return res, err
	}
	prev := after // last LSN known to exist (or be flushed)
	for i, s := range segs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		switch {
		case i == 0 && s.first > after+1:
			return res, fmt.Errorf("%w: first segment %s starts at %d, want <= %d", ErrCorrupt, s.name, s.first, after+1)
		case i > 0 && s.first != prev+1:
			return res, fmt.Errorf("%w: segment %s starts at %d, previous segment ends at %d", ErrCorrupt, s.name, s.first, prev)
		}
		data, err := vfs.ReadAll(fs, s.name)
		if err != nil {
			return res, fmt.Errorf("wal: read %s: %w", s.name, err)
		}
		good, last, _, err := ReadRecords(data, s.first, func(lsn uint64, p []byte) error {
			if lsn <= after {
				return nil
			}
			res.Records++
			return fn(lsn, p)
		})
		if err != nil {
			return res, fmt.Errorf("wal: replay %s: %w", s.name, err)
		}
		res.Segments++
		res.TornBytes += int64(len(data) - good)
		prev = last
		if last > res.LastLSN {
			res.LastLSN = last
		}
	}
	return res, nil
}
