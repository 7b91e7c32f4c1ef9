//go:build linux

// Package bench measures the rt shim against the host and the stock runc shim (`make bench`
// writes docs/benchmarks.md; `make bench-smoke` proves in a minute that it works). The
// benchmarks run real containers through a private containerd on the host's cgroups, with
// internal/harness as the integration tests do; bench/plot draws the figures and
// bench/report assembles the page.
//
// Without -test.bench only the unit tests of the parsers, statistics and tables run, as
// anyone; the benchmarks need root and the environment `make bench` sets (see
// harness.LoadEnv).
package bench

import (
	"flag"
	"os"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// env is what the benchmarks run: set by TestMain.
var env harness.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(harness.Main(m, "bench", &env))
}

// fifo80 is the RT request of the lifecycle and memory benchmarks.
var fifo80 = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80"}

// startContainerd starts a private containerd for b (see harness.Env.StartContainerd).
func startContainerd(b *testing.B) *harness.Daemon {
	b.Helper()
	return env.StartContainerd(b, harness.Options{})
}
