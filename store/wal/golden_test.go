package wal

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenSegment pins the record framing: an accidental format change
// fails here. Rewrite with: go test ./store/wal -run TestGolden -update
func TestGoldenSegment(t *testing.T) {
	var seg []byte
	for i := uint64(1); i <= 3; i++ {
		seg = AppendRecord(seg, i, payload(i))
	}
	path := filepath.Join("testdata", "segment.golden")
	if *update {
		os.WriteFile(path, seg, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seg, want) {
		t.Fatal("WAL record encoding changed; if intended, rerun with -update")
	}
}
