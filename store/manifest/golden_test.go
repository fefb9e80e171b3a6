package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenEdits pins the manifest encoding. Rewrite with:
// go test ./store/manifest -run TestGolden -update
func TestGoldenEdits(t *testing.T) {
	e0 := Edit{Checkpoint: true, FlushedLSN: 42, NextFileID: 9, Add: []TableMeta{tbl(1, 3, "a", "m"), tbl(1, 4, "n", "z")}}
	e1 := Edit{FlushedLSN: 50, Remove: []TableRef{{1, 3}}, Add: []TableMeta{tbl(0, 9, "b", "c")}}
	got := e1.Encode(e0.Encode(nil))
	path := filepath.Join("testdata", "edits.golden")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("manifest encoding changed; if intended, rerun with -update")
	}
	st, n, torn, err := Decode(want)
	if err != nil || n != 2 || torn || st.FlushedLSN != 50 || st.Tables() != [NumLevels]int{1, 1} {
		t.Fatalf("golden decodes to %+v (%d edits, torn %v, %v)", st, n, torn, err)
	}
}
