package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestAggregatorDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := Aggregator(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "all criteria hold") || strings.Count(out.String(), "EMERGENCY") != 8 {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}
