package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestQueryDemo(t *testing.T) {
	var out bytes.Buffer
	if err := Query(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"SeqScan 18th SDS  rows=100000",
		"50000 pairs",
		"identical to hash join: true",
		"500000 records",
		"same winners: true",
		"conflicts resolved: 100000 objects",
		"NORAD   winner",
		"all criteria hold",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	t.Log("\n" + s)
}
