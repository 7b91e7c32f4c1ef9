//go:build linux

package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Runtime types the tests run containers with.
const (
	// StockRuntime is containerd's runc shim: the control in every comparison.
	StockRuntime = "io.containerd.runc.v2"
	// RTRuntime is the shim under test.
	RTRuntime = "io.containerd.rt.v2"
)

// Env is what a tier tests: where the binaries are, their versions, and how long to wait for
// them. Host tiers load it from the environment `make` sets (LoadEnv); the VM tier names the
// initramfs's directories (NewEnv).
type Env struct {
	// BinDir holds rtshim's binaries: containerd-shim-rt-v2, runc-rt.
	BinDir string
	// ToolsDir holds containerd, ctr, containerd-shim-runc-v2 and runc built from tools/go.mod.
	ToolsDir string
	// ContainerdDir holds the containerd and ctr under test: ToolsDir, or another release's
	// (make test-compat). Its containerd-shim-runc-v2, if there, is the stock shim daemons find.
	ContainerdDir string
	// Runc is the runc the shims run: ToolsDir's, or another release's.
	Runc string
	// Rootfs is the test container rootfs: busybox, /bin/schedinfo and the testdata programs.
	Rootfs string

	// ContainerdVersion and RuncVersion are the binaries' own --version: "v2.4.2", "1.1.5+ds1".
	ContainerdVersion Release
	RuncVersion       string

	Timeouts Timeouts

	// ShimConfig, when set, is the rtshim config every daemon's shims and runc-rt read
	// ($RTSHIM_CONFIG) unless Options.Env names one: SuiteConfig for the host tiers (Main).
	// The VM tier has none: it puts SuiteConfig where the shims read it by default
	// (/etc/containerd/rtshim.toml), which a test may replace for a while.
	ShimConfig string

	// Skip, when set, makes RequireRoot skip every test with this reason.
	Skip string
}

// Timeouts bound what the tests wait for. Software emulation (the VM tier) is many times
// slower than the host.
type Timeouts struct {
	Ctr    time.Duration // one ctr command
	Start  time.Duration // a daemon, until it serves
	Output time.Duration // a detached container's first output
}

// HostTimeouts are for tests on the host; VMTimeouts under qemu's software emulation.
var (
	HostTimeouts = Timeouts{Ctr: 60 * time.Second, Start: 30 * time.Second, Output: 10 * time.Second}
	VMTimeouts   = Timeouts{Ctr: 2 * time.Minute, Start: time.Minute, Output: 30 * time.Second}
)

// LoadEnv reads the directories `make integration` passes and checks them:
//
//	RTSHIM_BIN_DIR         containerd-shim-rt-v2, runc-rt
//	RTSHIM_TOOLS_DIR       containerd, ctr, containerd-shim-runc-v2, runc
//	RTSHIM_ROOTFS          the test rootfs
//	RTSHIM_CONTAINERD_DIR  optional: containerd and ctr of another release (make test-compat)
//	RTSHIM_RUNC            optional: another runc binary (make test-compat)
func LoadEnv() (Env, error) {
	var dirs [3]string
	for i, name := range []string{"RTSHIM_BIN_DIR", "RTSHIM_TOOLS_DIR", "RTSHIM_ROOTFS"} {
		v := os.Getenv(name)
		if v == "" {
			return Env{}, fmt.Errorf("%s is not set", name)
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return Env{}, fmt.Errorf("%s=%s: %w", name, v, err)
		}
		dirs[i] = abs
	}
	containerdDir, runc := dirs[1], filepath.Join(dirs[1], "runc")
	if v := os.Getenv("RTSHIM_CONTAINERD_DIR"); v != "" {
		abs, err := filepath.Abs(v)
		if err != nil {
			return Env{}, fmt.Errorf("RTSHIM_CONTAINERD_DIR=%s: %w", v, err)
		}
		containerdDir = abs
	}
	if v := os.Getenv("RTSHIM_RUNC"); v != "" {
		abs, err := filepath.Abs(v)
		if err != nil {
			return Env{}, fmt.Errorf("RTSHIM_RUNC=%s: %w", v, err)
		}
		runc = abs
	}
	return NewEnv(dirs[0], dirs[1], containerdDir, runc, dirs[2], HostTimeouts)
}

// NewEnv checks that the directories hold what the tests run and reads the versions of
// containerd and runc.
func NewEnv(binDir, toolsDir, containerdDir, runc, rootfs string, timeouts Timeouts) (Env, error) {
	e := Env{BinDir: binDir, ToolsDir: toolsDir, ContainerdDir: containerdDir, Runc: runc, Rootfs: rootfs, Timeouts: timeouts}
	for _, c := range []struct {
		dir   string
		files []string
	}{
		{binDir, []string{"containerd-shim-rt-v2", "runc-rt"}},
		{toolsDir, []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc"}},
		{containerdDir, []string{"containerd", "ctr"}},
		{rootfs, []string{"bin/sh", "bin/schedinfo"}},
	} {
		for _, f := range c.files {
			if _, err := os.Stat(filepath.Join(c.dir, f)); err != nil {
				return Env{}, err
			}
		}
	}
	if st, err := os.Stat(runc); err != nil {
		return Env{}, fmt.Errorf("runc: %w", err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return Env{}, fmt.Errorf("runc %s: not an executable file", runc)
	}

	out, err := exec.Command(filepath.Join(containerdDir, "containerd"), "--version").Output()
	if err != nil {
		return Env{}, fmt.Errorf("containerd --version: %w", err)
	}
	// "containerd github.com/containerd/containerd/v2 v2.0.14 <commit>"
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return Env{}, fmt.Errorf("containerd --version: no version in %q", out)
	}
	if e.ContainerdVersion, err = ParseRelease(f[2]); err != nil {
		return Env{}, fmt.Errorf("containerd --version: %w", err)
	}
	out, err = exec.Command(runc, "--version").Output()
	if err != nil {
		return Env{}, fmt.Errorf("%s --version: %w", runc, err)
	}
	// "runc version 1.1.5+ds1\ncommit: ...\nspec: 1.0.2-dev\n..."
	first, _, _ := strings.Cut(string(out), "\n")
	var ok bool
	if e.RuncVersion, ok = strings.CutPrefix(first, "runc version "); !ok {
		return Env{}, fmt.Errorf("%s --version: no version in %q", runc, out)
	}
	return e, nil
}

// RequireRoot skips the test when the tier cannot run here (not root). Every test calls it
// first; StartContainerd does too.
func (e *Env) RequireRoot(t testing.TB) {
	t.Helper()
	if e.Skip != "" {
		t.Skip(e.Skip)
	}
}

// RuncIgnoresScheduler reports whether the runc under test predates process.scheduler
// (runc < 1.2, e.g. Debian 12's 1.1.5).
func (e *Env) RuncIgnoresScheduler() bool {
	return strings.HasPrefix(e.RuncVersion, "1.0.") || strings.HasPrefix(e.RuncVersion, "1.1.")
}

// Release is a containerd release's version: v<major>.<minor>.<patch>.
type Release struct {
	Major, Minor, Patch int
	text                string
}

func (r Release) String() string { return r.text }

// AtLeast reports whether r is major.minor or later.
func (r Release) AtLeast(major, minor int) bool {
	return r.Major > major || r.Major == major && r.Minor >= minor
}

// ParseRelease parses "v2.0.14" (or "2.0.14", with any "-rc.1" or "+dev" suffix).
func ParseRelease(s string) (Release, error) {
	r := Release{text: s}
	core, _, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	if _, err := fmt.Sscanf(core, "%d.%d.%d", &r.Major, &r.Minor, &r.Patch); err != nil {
		return r, fmt.Errorf("version %q: %w", s, err)
	}
	if r.Major == 0 {
		return r, fmt.Errorf("version %q: major version 0", s)
	}
	return r, nil
}

// Main is the TestMain of a tier that runs on the host (integration, bench). Not root, it
// marks env to skip every test and runs them (the tier's unit tests, if any, still run). As
// root it loads env (LoadEnv; a missing directory fails the run: as root a skip would pass
// silently), sweeps what killed earlier runs left, runs the tests, and fails the run if it
// left state in /run/containerd. It returns the exit code.
func Main(m *testing.M, tier string, env *Env) int {
	if os.Geteuid() != 0 {
		env.Skip = tier + " tests need root"
		fmt.Println("SKIP: " + env.Skip)
		return m.Run()
	}
	loaded, err := LoadEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\nrun the %s tests with make (as root): it builds the binaries and sets the environment\n", err, tier)
		return 1
	}
	*env = loaded
	env.ShimConfig = SuiteConfig
	fmt.Printf("%s: containerd %s (%s), runc %s (%s)\n", tier, env.ContainerdVersion,
		filepath.Join(env.ContainerdDir, "containerd"), env.RuncVersion, env.Runc)

	env.SweepStale(tier)
	_ = TidyRunDir(false) // what an earlier run's leftovers left empty
	runDirExisted := Exists(RunContainerdDir)
	code := m.Run()
	if err := TidyRunDir(!runDirExisted); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	return code
}

// Exists reports whether path exists (a dangling symlink does).
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
