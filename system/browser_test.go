package system_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meridian-ops/meridian/schemas"
)

// chromium finds the Debian Chromium that .ci/run installs.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("MERIDIAN_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
	return ""
}

// The dashboard in a real headless Chromium against the running system with
// the simulator: counters rise, a station shown as connected disappears
// when it drops, an emergency frame shows up. A screenshot is saved.
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Demo = true
	s := start(t, cfg)
	defer stop(t, s)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()

	url := "http://" + s.HTTP.Addr().String() + "/"
	number := func(sel string) int {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(txt), ",", ""))
		return n
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#conn.ok"))); err != nil {
		t.Fatalf("dashboard never went live: %v", err)
	}
	// Counters rise as the simulator streams.
	var first int
	waitFor(t, ctx, 30*time.Second, func() bool { first = number("#frames_processed"); return first > 0 }, "processed counter never rose above 0")
	waitFor(t, ctx, 30*time.Second, func() bool { return number("#frames_processed") > first }, "processed counter stopped rising")

	// A station of our own: connected, then gone when it drops.
	c, err := net.Dial("tcp", s.Gateway.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = schemas.WriteFrame(c, []byte("HELLO station=gs-browser format=mf1"))
	_ = schemas.WriteFrame(c, schemas.AppendMF1(nil, schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: 424242,
		SatelliteID: 47, Flags: schemas.FlagEmergency}, []byte("SAFE")))
	sessions := func() string {
		txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#sessions")))
		return txt
	}
	waitFor(t, ctx, 30*time.Second, func() bool { return strings.Contains(sessions(), "gs-browser") }, "new station not shown")
	waitFor(t, ctx, 30*time.Second, func() bool {
		emergency, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#emergency")))
		return strings.Contains(emergency, "424242")
	}, "our emergency frame never showed up")

	// The store card shows the registry filling from the simulated catalog sources.
	waitFor(t, ctx, 30*time.Second, func() bool {
		txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#store_counts")))
		objects, _, _ := strings.Cut(txt, " / ")
		n, _ := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(objects), ",", ""))
		return n > 0
	}, "the store's object count never showed up")

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100) /* 100: PNG */)
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if out := os.Getenv("MERIDIAN_SCREENSHOT"); out != "" {
		_ = os.WriteFile(out, png, 0o644)
	}

	c.Close() // the station drops
	waitFor(t, ctx, 30*time.Second, func() bool { return !strings.Contains(sessions(), "gs-browser") }, "dropped station still shown")
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
