package ops_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/meridian-ops/meridian/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, bustest.LeakOptions(goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))...)
}
