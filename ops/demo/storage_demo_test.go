package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestPagesDemo(t *testing.T) {
	var out bytes.Buffer
	if err := Pages(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"1 page I/O", "2 checksum", "hit rate=", "4 slotted page", "5 delete+compact", "6 page full", "7 summary: records inserted="} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}

func TestBTreeDemo(t *testing.T) {
	var out bytes.Buffer
	if err := BTree(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"buffer pool of 16 frames", "returned 101 records", "Check passed", "4 bulk load:", "5 delete:", "fill=", "hit-rate="} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
