package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMVCCDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	var buf bytes.Buffer
	err := MVCC(context.Background(), &buf)
	out := buf.String()
	t.Log("\n" + out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "FAIL") || strings.Count(out, "PASS") < 25 {
		t.Fatal("demo output lacks the passing criteria")
	}
	for _, want := range []string{
		"NORAD-25544 ts=110  644e4f5241442d32353534340001 | ffffffffffffff91",
		"stored versions in LSM order: [110, 80, 50]",
		`read at ts 60 -> "elset@50" (version ts 50)`,
		`read at ts 90 -> "elset@80" (version ts 80)`,
		`read at ts 120 -> "elset@110" (version ts 110)`,
		"stored versions: [80 (delete), 50]",
		"read at ts 90 -> not found",
		"reads consistent: no torn reads, no version mixing",
		"writer not blocked: 1000/1000 commits",
		"T2 is aborted: mvcc: commit",
		"conflicts counted: 1",
		"versions [120 90 70 30] -> compaction -> [120 90 70], 1 dropped",
		"ts=120 kept (above the watermark); ts=90 kept (what a reader at the watermark sees); ts=70 kept (safety margin); ts=30 collected",
		"versions [120 90 70 30] -> compaction -> [120 90], 2 dropped",
		"loaded 10000 TLEs (source 18th-sds) through catalog.Apply in 10 group commits",
		"100/100 versions read are pre-update",
		"sees 50/50 updated objects (catalog still 10000 objects)",
		"all criteria hold",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

// --dir keeps the stores, and a second run into the same directory is
// refused rather than failing on the scenarios' fixed clocks.
func TestMVCCDemoDirMustBeFresh(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "2-snapshot-reads"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "2-snapshot-reads", "stale"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := MVCCIn(context.Background(), &buf, dir)
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("err = %v, want a refusal of the non-empty store directory", err)
	}
}
