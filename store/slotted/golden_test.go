package slotted

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/pagefile"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// The slotted-page format is pinned by a golden page: inserts, a delete, a
// compaction and a slot reuse must encode to exactly these bytes.
func TestGoldenPage(t *testing.T) {
	p := Init(make([]byte, pagefile.PageSize), 5)
	for i := range 6 {
		if _, err := p.Insert(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	p.Delete(1)
	p.Delete(3)
	p.Compact()
	if _, err := p.Insert([]byte("reused slot")); err != nil {
		t.Fatal(err)
	}
	pagefile.SetLSN(p, 42)
	pagefile.Seal(p, 5)
	golden := filepath.Join("testdata", "page.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(p, want) {
		t.Fatal("slotted page format changed (run with -update if intended)")
	}
	if err := pagefile.Verify(want, 5); err != nil {
		t.Fatal(err)
	}
	if err := Page(want).Check(); err != nil {
		t.Fatal(err)
	}
}
