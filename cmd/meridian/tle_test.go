package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/tle"
	"github.com/meridian-ops/meridian/workers/store"
)

func meridian(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// parseFile reads the real element sets of a test file.
func parseFile(t *testing.T, path, source string) map[uint32]schemas.Tle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sets, err := tle.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]schemas.Tle{}
	for i := range sets {
		out[sets[i].Record.NoradID] = store.FromSet(&sets[i], source)
	}
	return out
}

func scanAll(t *testing.T, url string) map[uint32]schemas.Tle {
	t.Helper()
	out, errOut, err := meridian(t, "tle", "scan", "1", "999999", "--nats-url", url)
	if err != nil {
		t.Fatalf("tle scan: %v\n%s", err, errOut)
	}
	got := map[uint32]schemas.Tle{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var x schemas.Tle
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("scan line %q: %v", sc.Text(), err)
		}
		got[x.NoradID] = x
	}
	return got
}

// Importing the real catalogs of testdata/tle (copied from
// shared/data/tle) round-trips every valid record through the TLE stream,
// the store worker and oor.tle.scan / oor.tle.get; a second source with
// newer epochs wins the objects both report; the merge counts them.
func TestTLEImportRoundTrip(t *testing.T) {
	url := startRunNATS(t)
	older := filepath.Join("testdata", "tle", "stations.txt")     // epoch 2020-172
	newer := filepath.Join("testdata", "tle", "stations-tle.txt") // epoch 2020-177

	_, errOut, err := meridian(t, "tle", "import", older, "--source", "numerica", "--wait", "--nats-url", url)
	if err != nil || !strings.Contains(errOut, "3 element sets published") {
		t.Fatalf("import %s: %v\n%s", older, err, errOut)
	}
	want := parseFile(t, older, "numerica")
	if got := scanAll(t, url); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the first import the catalog is\n%v\nwant\n%v", got, want)
	}

	_, errOut, err = meridian(t, "tle", "import", newer, "--source", "18th-sds", "--wait", "--nats-url", url)
	if err != nil || !strings.Contains(errOut, "71 element sets published to tle.update.18th-sds, 0 rejected") {
		t.Fatalf("import %s: %v\n%s", newer, err, errOut)
	}
	for id, x := range parseFile(t, newer, "18th-sds") {
		want[id] = x // every object of the newer file has the newer epoch
	}
	got := scanAll(t, url)
	if len(got) != len(want) {
		t.Fatalf("catalog holds %d objects, want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("object %d:\n got %+v\nwant %+v", id, got[id], w)
		}
	}

	out, errOut, err := meridian(t, "tle", "get", "25544", "--nats-url", url)
	var rep schemas.TleGetReply
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Tle.Epoch != 20177.54743984 || rep.Tle.Name != "ISS (ZARYA)" {
		t.Fatalf("tle get 25544: %v %s %s", err, out, errOut)
	}
	if _, errOut, err := meridian(t, "tle", "get", "99999", "--nats-url", url); err == nil || !strings.Contains(errOut, "not in the catalog") {
		t.Fatalf("tle get of an unknown object: %v %s", err, errOut)
	}
	// As of a time before the second import, ISS had its older epoch.
	out, _, err = meridian(t, "tle", "get", "25544", "--as-of", fmt.Sprint(rep.CommitTs-1), "--nats-url", url)
	if err != nil || !strings.Contains(out, "20172.98069473") {
		t.Fatalf("tle get --as-of: %v %s", err, out)
	}

	out, errOut, err = meridian(t, "catalog", "merge", "--nats-url", url)
	if err != nil || !strings.Contains(out, "74 rows in, 71 objects, 3 conflicts resolved") || !strings.Contains(out, "18th-sds") {
		t.Fatalf("catalog merge: %v\n%s%s", err, out, errOut)
	}
}

// A file with bad lines: the bad sets are named by line number and
// skipped, the good ones imported, and the command fails.
func TestTLEImportRejectsBadLines(t *testing.T) {
	url := startRunNATS(t)
	data, err := os.ReadFile(filepath.Join("testdata", "tle", "stations.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	lines[4] = lines[4][:68] + "0"                      // set 2, line 1: wrong checksum (line 5 of the file)
	lines[8] = strings.Replace(lines[8], "2 ", "X ", 1) // set 3, line 2: not a line 2 (line 9)
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := meridian(t, "tle", "import", bad, "--source", "leolabs", "--wait", "--nats-url", url)
	if err == nil || !strings.Contains(errOut, "bad.txt: line 5: ") || !strings.Contains(errOut, "bad.txt: line 9: ") ||
		!strings.Contains(errOut, "1 element sets published") || !strings.Contains(errOut, "2 element sets rejected") {
		t.Fatalf("import of a bad file: err %v\n%s", err, errOut)
	}
	if got := scanAll(t, url); len(got) != 1 || got[25544].Source != "leolabs" {
		t.Fatalf("catalog after a bad import: %v", got)
	}
}

// kill -9 of a store worker process mid-ingest, twice; after the restart
// every update JetStream acked to the publisher is in the store.
func TestStoreKill9MidIngest(t *testing.T) {
	b := bustest.New(t)
	dataDir := t.TempDir()
	startStore := func() *exec.Cmd {
		cmd := exec.Command(binary, "store", "--nats-url", b.URL, "--data-dir", dataDir, "--http-addr", "127.0.0.1:0")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	nc, err := nats.Connect(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ackFloor := func() uint64 {
		c, err := js.Consumer(context.Background(), schemas.StreamTLE, "store")
		if err != nil {
			return 0
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.AckFloor.Stream
	}
	const n = 20_000
	proc := startStore()
	published := make(chan error, 1)
	go func() {
		for id := uint32(1); id <= n; id++ {
			u := schemas.Tle{NoradID: id, Epoch: 24001.5, MeanMotion: 15, Inclination: 51, Source: "leolabs", RevNumber: id}
			data, _ := schemas.Marshal(&u)
			if _, err := js.PublishAsync(schemas.TLESubject("leolabs"), data); err != nil {
				published <- err
				return
			}
			if id%1000 == 0 {
				<-js.PublishAsyncComplete()
			}
		}
		<-js.PublishAsyncComplete()
		published <- nil
	}()
	for round, at := range []uint64{3_000, 9_000} {
		bustest.Eventually(t, 60*time.Second, func() bool { return ackFloor() >= at }, "store worker did not ingest")
		if err := proc.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = proc.Wait()
		t.Logf("round %d: killed at ack floor %d", round, ackFloor())
		proc = startStore()
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 60*time.Second, func() bool { return ackFloor() >= n }, "store worker did not catch up")
	bustest.Eventually(t, 10*time.Second, func() bool {
		data, _ := schemas.Marshal(&struct{}{})
		m, err := nc.Request(schemas.OORStats, data, 5*time.Second)
		var st schemas.StoreStats
		return err == nil && schemas.Unmarshal(m.Data, &st) == nil && st.Objects == n
	}, "the store does not hold every acked update")
	// Spot-check contents through the service.
	for _, id := range []uint32{1, 2999, 3001, 9001, n} {
		data, _ := schemas.Marshal(&schemas.TleGetRequest{NoradID: id})
		m, err := nc.Request(schemas.OORTleGet, data, 5*time.Second)
		var rep schemas.TleGetReply
		if err != nil || schemas.Unmarshal(m.Data, &rep) != nil || !rep.Found || rep.Tle.RevNumber != id {
			t.Fatalf("object %d after kill -9: %+v %v", id, rep, err)
		}
	}
}
