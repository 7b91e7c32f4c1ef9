//go:build linux && docker

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// startContainerd17 starts a private containerd 1.7 from dir (its containerd, ctr and
// containerd-shim-runc-v2) with env added to its environment, torn down by t.Cleanup as
// startContainerd's daemons are. Its PATH has dir before the tools dir, so the stock runc shim
// is containerd 1.7's, as Docker 28 ships them; BinDir gives it containerd-shim-rt-v2 and
// runc-rt, the tools dir runc.
func startContainerd17(t testing.TB, dir string, environ ...string) *harness.Daemon {
	t.Helper()
	e, err := harness.NewEnv(env.BinDir, env.ToolsDir, dir, env.Runc, env.Rootfs, env.Timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if e.ContainerdVersion.Major != 1 || e.ContainerdVersion.Minor != 7 {
		t.Fatalf("%s is containerd %s, not 1.7", dir, e.ContainerdVersion)
	}
	e.ShimConfig = env.ShimConfig
	return e.StartContainerd(t, harness.Options{Env: environ})
}

// shimBinary is the executable of the shim that serves container id of d.
func shimBinary(t testing.TB, d *harness.Daemon, id string) string {
	t.Helper()
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(d.ShimPID(t, id)), "exe"))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
