//go:build linux

// Package integration runs real containers through a private containerd with the rt shim, the
// stock runc shim and runc-rt, on the host's real cgroups (cgroup v1 with RT group
// scheduling on the development and CI hosts).
//
// The tests need root and the directories `make test` (or `make integration`) builds and
// passes in the environment (see harness.LoadEnv): RTSHIM_BIN_DIR, RTSHIM_TOOLS_DIR,
// RTSHIM_ROOTFS, and for `make test-compat` RTSHIM_CONTAINERD_DIR and RTSHIM_RUNC. Not root:
// every test skips. Root without the variables: the run fails.
//
// The framework is internal/harness, shared with the benchmarks (bench/) and the cgroup v2
// tier (vmtest/); this package adds startContainerd and writeFile. Tests that compare
// harness.SnapshotCPUTree results must not call t.Parallel.
package integration

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// env is what the tests run: set by TestMain.
var env harness.Env

func TestMain(m *testing.M) { os.Exit(harness.Main(m, "integration", &env)) }

// fifo80 is the request most tests use.
var fifo80 = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80"}

// startContainerd starts a private containerd with extraTOML appended to its config (see
// harness.Env.StartContainerd); t.Cleanup tears it down.
func startContainerd(t testing.TB, extraTOML ...string) *harness.Daemon {
	t.Helper()
	return env.StartContainerd(t, harness.Options{TOML: extraTOML})
}

// writeFile writes content to dir/name (making dir/name's parent) and returns the path. For
// runtime config files, give it t.TempDir() or d.Dir.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
