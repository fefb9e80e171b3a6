// Package bustest starts a real embedded NATS server with JetStream for
// tests: a temporary data directory, a random loopback port, the contract
// provisioned, and everything shut down by t.Cleanup. Tests of every worker
// run against it instead of mocks.
package bustest

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus"
)

// New starts an embedded bus for t. Options mutate the config first.
func New(t testing.TB, opts ...func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := bus.Config{DataDir: t.TempDir(), ListenAddr: "127.0.0.1:0", Name: t.Name(), Logger: Logger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("bustest: open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Conn opens a second, independent client connection to b's server, as an
// outside system would; it is closed by t.Cleanup.
func Conn(t testing.TB, b *bus.Bus) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(b.URL, nats.Name(t.Name()+"-client"))
	if err != nil {
		t.Fatalf("bustest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Logger returns a slog logger writing to the test log (quiet unless -v
// or the test fails). Set MERIDIAN_TEST_LOG=stderr to see it live.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // logging after the test ended must not panic
	w.t.Logf("%s", p)
	return len(p), nil
}

// Discard is a logger that drops everything.
var Discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// Eventually polls cond every 5 ms until it returns true or timeout passes,
// then fails the test with msg. It is the way tests wait: never a bare sleep.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LeakOptions are the goroutines a test binary may have left when it ends:
// the embedded NATS server keeps a few process-wide ones after Shutdown.
// Packages that start goroutines pass them to goleak in TestMain:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m, bustest.LeakOptions()...) }
func LeakOptions(extra ...goleak.Option) []goleak.Option {
	return append([]goleak.Option{
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine.func1"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*ipQueue[...]).pop"),
		goleak.IgnoreTopFunction("time.Sleep"),
	}, extra...)
}

// CPUTime is the process's user+system CPU time so far: benchmarks report
// CPU per unit of work from two readings, which unlike frames/s does not
// depend on how much of the machine the run managed to keep busy.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
