package wal

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meridian-ops/meridian/store/vfs"
)

const segmentSuffix = ".log"

// segment is one log file, named by the LSN of its first record.
type segment struct {
	first uint64
	name  string // full path
}

func segmentName(dir string, first uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", first, segmentSuffix))
}

// listSegments returns dir's segments in LSN order.
func listSegments(fs vfs.FS, dir string) ([]segment, error) {
	names, err := fs.List(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []segment
	for _, n := range names {
		if !strings.HasSuffix(n, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(n, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, name: filepath.Join(dir, n)})
	}
	// Names are zero-padded, so List's lexical order is LSN order.
	return segs, nil
}
