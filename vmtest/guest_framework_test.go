//go:build linux

package vmtest

// The guest's framework: internal/harness, with one containerd for the whole run (the VM is
// new each boot, and a daemon takes seconds to start under emulation), plus what only this
// tier checks.
//
//	guest(t)                     the daemon; skips outside the VM
//	assertNoResidue(t, ids...)   cgroups, claims and baselines are gone

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

const (
	// namespace is the containerd namespace of every test container; ctr puts a container's
	// cgroup at /<namespace>/<id>.
	namespace = "v2"
	// daemonDir is the daemon's directory: config, state, log, detached containers' output.
	daemonDir = "/run/vmtest"
	// shimConfig is where the shims and runc-rt read their config by default.
	shimConfig = "/etc/containerd/rtshim.toml"
)

// guestDaemon is set by TestMain in the VM.
var guestDaemon *harness.Daemon

// guestEnv is the initramfs's layout (hack/vm/initramfs.sh): every binary in /usr/local/bin,
// the test rootfs at /rootfs.
func guestEnv() (harness.Env, error) {
	const bin = "/usr/local/bin"
	return harness.NewEnv(bin, bin, bin, bin+"/runc", "/rootfs", harness.VMTimeouts)
}

// startDaemon starts the VM's containerd and waits until it serves. The shims' config is the
// host tiers' (harness.SuiteConfig: the kernel's limits, so that the checks of mechanisms are
// not checks of the defaults), at the default path, where a test may put its own for a while
// (TestV2Tuning).
func startDaemon() (*harness.Daemon, error) {
	env, err := guestEnv()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(shimConfig), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(shimConfig, []byte(harness.SuiteConfig), 0o644); err != nil {
		return nil, err
	}
	return env.LaunchContainerd(harness.Options{Dir: daemonDir, Namespace: namespace})
}

// guest returns the VM's daemon; outside the VM the test skips.
func guest(t testing.TB) *harness.Daemon {
	t.Helper()
	if guestDaemon == nil {
		t.Skip("runs inside the cgroup v2 VM (make test-v2)")
	}
	return guestDaemon
}

// assertNoResidue fails when a container's cgroup or any shim record is left.
func assertNoResidue(t testing.TB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if cg := "/" + namespace + "/" + id; harness.CgroupExists(cg) {
			t.Errorf("cgroup %s left behind", cg)
		}
	}
	if recs := harness.StateRecords(); len(recs) > 0 {
		t.Errorf("rtshim records left in %s: %v", harness.StateDir, recs)
	}
}
