package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/schemas"
)

var natsURLRE = regexp.MustCompile(`msg="embedded NATS started" url=(\S+)`)

// startRunNATS starts `meridian run` and returns its embedded NATS URL.
func startRunNATS(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(binary, "run", "--nats-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--gateway-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := natsURLRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-urlc:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("meridian run never announced its NATS URL")
	}
	return ""
}

// `meridian cmd send` stores a command in CMD and prints its id; an
// invalid command fails with a clear message; `meridian cmd watch` prints
// dispatched commands as JSON lines.
func TestCmdSendAndWatch(t *testing.T) {
	url := startRunNATS(t)
	out, err := exec.Command(binary, "cmd", "send", "--nats-url", url, "--station", "gs-1", "--kind", "REPOINT", "--az", "180", "--el", "45").CombinedOutput()
	if err != nil {
		t.Fatalf("cmd send: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The command is in CMD (or, if the command queue runs, already dispatched).
	var found bool
	for stream, subject := range map[string]string{schemas.StreamCmd: schemas.SubmitSubject("gs-1"), schemas.StreamDispatch: schemas.DispatchSubject("gs-1")} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.GetLastMsgForSubject(ctx, subject); err == nil {
			var c schemas.Command
			if err := schemas.Decode(m.Data, &c); err != nil {
				t.Fatal(err)
			}
			found = found || c.ID == id && c.Kind == schemas.CmdRepoint && *c.Azimuth == 180 && *c.Elevation == 45
		}
	}
	if !found {
		t.Fatalf("command %q not stored", id)
	}

	out, err = exec.Command(binary, "cmd", "send", "--nats-url", url, "--station", "gs-1", "--kind", "REPOINT").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "REPOINT needs azimuth") {
		t.Fatalf("invalid send: err %v, output %s", err, out)
	}

	watch := exec.Command(binary, "cmd", "watch", "--nats-url", url, "--station", "gs-9")
	var werr strings.Builder
	watch.Stderr = &werr
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Process.Signal(os.Interrupt); _ = watch.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	c := schemas.Command{ID: "watch-me", StationID: "gs-9", Kind: schemas.CmdSafeMode, IssuedAtNs: 1}
	data, _ := schemas.Marshal(&c)
	tick := time.NewTicker(100 * time.Millisecond) // until the watcher has subscribed
	defer tick.Stop()
	for {
		if err := nc.Publish(schemas.DispatchSubject("gs-9"), data); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-lines:
			if !strings.Contains(l, `"id":"watch-me"`) || !strings.Contains(l, `"kind":"SAFE_MODE"`) {
				t.Fatalf("watch printed %s", l)
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("watch printed nothing; stderr: %s", werr.String())
		}
	}
}
