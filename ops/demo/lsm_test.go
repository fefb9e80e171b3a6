package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestLSMDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	var buf bytes.Buffer
	var err error
	if raceEnabled {
		err = lsmDemo(context.Background(), &buf, lsmConfig{Records: 20000, MemtableSize: 512 << 10})
	} else {
		err = LSM(context.Background(), &buf)
	}
	t.Log("\n" + buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "FAIL") || strings.Count(buf.String(), "PASS") < 7 {
		t.Fatal("demo output lacks seven passing criteria")
	}
}

func TestWALDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	var buf bytes.Buffer
	var err error
	if raceEnabled {
		err = walDemo(context.Background(), &buf, walConfig{RecoverySizes: []int{1000, 5000, 10000}})
	} else {
		err = WAL(context.Background(), &buf)
	}
	t.Log("\n" + buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "FAIL") || strings.Count(buf.String(), "PASS") < 9 {
		t.Fatal("demo output lacks the passing criteria")
	}
}
