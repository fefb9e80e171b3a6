package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binary is the meridian command built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meridian-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "meridian")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var httpAddrRE = regexp.MustCompile(`msg="ops HTTP serving" addr=(\S+)`)

// startRun starts `meridian run` on free ports and returns the process and
// its ops HTTP base URL once the server announced it.
func startRun(t *testing.T, dataDir string, extraEnv ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--nats-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--gateway-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), append([]string{"MERIDIAN_DATA_DIR=" + dataDir}, extraEnv...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := httpAddrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addrc:
		return cmd, "http://" + a
	case <-time.After(20 * time.Second):
		t.Fatal("meridian run never announced its HTTP address")
	}
	return nil, ""
}

// `meridian run` on a fresh data dir (given by environment variable)
// becomes ready, and SIGTERM shuts it down in order with exit code 0.
func TestRunReadyThenGracefulSIGTERM(t *testing.T) {
	dataDir := t.TempDir()
	began := time.Now()
	cmd, base := startRun(t, dataDir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 200 within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ready %v after start (target: under 2 s; see ops/perf/foundation.md)", time.Since(began))
	if _, err := os.Stat(filepath.Join(dataDir, "nats", "jetstream")); err != nil {
		t.Fatalf("MERIDIAN_DATA_DIR not honoured: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want code 0", err)
		}
	case <-time.After(11 * time.Second):
		t.Fatal("meridian run did not exit within 11 s of SIGTERM")
	}
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run")
	cmd.Env = append(os.Environ(), "MERIDIAN_SYNC_ALWAYS=perhaps", "MERIDIAN_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MERIDIAN_SYNC_ALWAYS") {
		t.Fatalf("want a clear error naming the variable, got %v: %s", err, out)
	}
}

// Every run flag reaches the system configuration (a flag that is parsed
// but never wired is a silent no-op for the operator).
func TestRunFlagsReachTheConfig(t *testing.T) {
	if err := runCmd.ParseFlags([]string{"--demo", "--handlers", "3", "--api-token", "t", "--require-station-token", "s",
		"--gs-stations", "f.json", "--sync-always", "--gateway-addr", "g:1", "--udp-addr", "u:2", "--http-addr", "h:3"}); err != nil {
		t.Fatal(err)
	}
	c := systemConfig()
	if !c.Demo || c.Handlers != 3 || c.APIToken != "t" || c.StationToken != "s" || c.GSStations != "f.json" || !c.SyncAlways ||
		c.GatewayAddr != "g:1" || c.UDPAddr != "u:2" || c.HTTPAddr != "h:3" {
		t.Fatalf("flags not wired: %+v", c)
	}
}

// The soak keeps telemetry for a minute unless --retention says otherwise.
func TestSoakRetention(t *testing.T) {
	if os.Getenv("MERIDIAN_RETENTION") != "" {
		t.Skip("MERIDIAN_RETENTION is set")
	}
	if c := soakConfig(soakCmd); c.Retention != time.Minute {
		t.Fatalf("soak retention %v by default, want 1m", c.Retention)
	}
	t.Cleanup(func() {
		global.retention = 24 * time.Hour
		soakCmd.Flags().Lookup("retention").Changed = false
		rootCmd.PersistentFlags().Lookup("retention").Changed = false
	})
	if err := soakCmd.ParseFlags([]string{"--retention", "90m"}); err != nil {
		t.Fatal(err)
	}
	if c := soakConfig(soakCmd); c.Retention != 90*time.Minute {
		t.Fatalf("soak retention %v with --retention 90m", c.Retention)
	}
}

// --retention reaches the configuration, and a bad --memory-limit is an
// error naming the flag before anything starts.
func TestRetentionAndMemoryLimitFlags(t *testing.T) {
	if err := rootCmd.PersistentFlags().Parse([]string{"--retention", "90m"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		global.retention = 24 * time.Hour
		rootCmd.PersistentFlags().Lookup("retention").Changed = false
	})
	if c := systemConfig(); c.Retention != 90*time.Minute {
		t.Fatalf("retention %v, want 90m", c.Retention)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "--memory-limit", "lots")
	cmd.Env = append(os.Environ(), "MERIDIAN_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--memory-limit") {
		t.Fatalf("want a clear error naming --memory-limit, got %v: %s", err, out)
	}
}
