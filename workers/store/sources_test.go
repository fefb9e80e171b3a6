package store_test

import (
	"fmt"
	"testing"

	"github.com/meridian-ops/meridian/workers/store"
)

func TestParseSources(t *testing.T) {
	got, err := store.ParseSources(" 1:18th-sds:5, 2:esa-sst:4,9:space-track:9")
	if err != nil || fmt.Sprint(got) != "[{1 18th-sds 5} {2 esa-sst 4} {9 space-track 9}]" {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := store.ParseSources(""); got != nil || err != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"1:a", "0:a:1", "256:a:1", "1:a:256", "1:a.b:1", "1::1", "1:a:1,1:b:2", "1:a:1,2:a:2"} {
		if _, err := store.ParseSources(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
