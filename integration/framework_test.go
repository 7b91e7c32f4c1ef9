//go:build linux

// Package integration runs real containers through a private containerd with
// the rt shim and the stock runc shim, on the host's real cgroups.
//
// The tests need root and three directories, which `make test` (or `make
// integration`) builds and passes in the environment:
//
//	RTSHIM_BIN_DIR    containerd-shim-rt-v2
//	RTSHIM_TOOLS_DIR  containerd, ctr, containerd-shim-runc-v2, runc
//	RTSHIM_ROOTFS     the test rootfs: busybox, /bin/schedinfo
//
// Two optional ones run the suite against other releases (`make
// test-compat` sets them):
//
//	RTSHIM_CONTAINERD_DIR  containerd and ctr to use instead of
//	                       RTSHIM_TOOLS_DIR's; its containerd-shim-runc-v2,
//	                       if there, is the stock shim the daemons find
//	RTSHIM_RUNC            the runc binary the shims run instead of
//	                       RTSHIM_TOOLS_DIR's
//
// Not root: every test skips. Root without the variables: the run fails.
//
// Framework (see each declaration):
//
//	requireRoot(t)                       skip unless the suite can run
//	startContainerd(t, extraTOML...)     a private daemon, torn down by t.Cleanup
//	d.Ctr / d.MustCtr                    ctr against that daemon and its namespace
//	d.Run(t, RunOpts)                    ctr run a container from the test rootfs
//	d.OutputFile(id)                     stdout+stderr of a detached container
//	d.CgroupPath(id)                     the container's cgroup, relative to a hierarchy
//	cgroupV1Path, readCgroupInt          cgroup v1 files
//	snapshotCPUTree, diffCPUTree         RT budgets and quotas before and after
//	writeFile                            a file in a (temp) dir
//
// Tests that compare snapshotCPUTree results must not call t.Parallel.
package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// stockRuntime is containerd's runc shim: the control in every comparison.
	stockRuntime = "io.containerd.runc.v2"
	// rtRuntime is the shim under test.
	rtRuntime = "io.containerd.rt.v2"

	// tempRoot holds the daemons' temp dirs: short paths, for the 108-byte
	// unix socket limit. tempPrefix names every temp dir, and so every
	// containerd namespace and cgroup, that the tests make.
	tempRoot   = "/tmp"
	tempPrefix = "rtshim-it-"
)

var (
	// skipReason, when set, makes requireRoot skip.
	skipReason string

	// Absolute directories from the environment (see the package doc).
	binDir, toolsDir, rootfsDir string
	// containerdDir holds the containerd and ctr under test:
	// RTSHIM_CONTAINERD_DIR, or toolsDir.
	containerdDir string
	// runcBin is the runc the shims run: RTSHIM_RUNC, or toolsDir's.
	runcBin string

	// Versions of the binaries under test, from their --version.
	daemonVersion release // containerd's
	runcVersion   string  // runc's, as it prints it: "1.5.2", "1.1.5+ds1"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		skipReason = "integration tests need root"
		fmt.Println("SKIP: " + skipReason)
		os.Exit(m.Run())
	}
	if err := loadEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\nrun the integration tests with `make test` (as root): it builds the binaries and sets the environment\n", err)
		os.Exit(1)
	}

	fmt.Printf("integration: containerd %s (%s), runc %s (%s)\n",
		daemonVersion, filepath.Join(containerdDir, "containerd"), runcVersion, runcBin)

	sweepStale()
	_ = tidyRunDir(false) // what an earlier run's leftovers left empty
	runDirExisted := exists(runContainerdDir)
	code := m.Run()
	if err := tidyRunDir(!runDirExisted); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// loadEnv reads and checks RTSHIM_BIN_DIR, RTSHIM_TOOLS_DIR and RTSHIM_ROOTFS.
func loadEnv() error {
	for _, v := range []struct {
		env   string
		dst   *string
		files []string
	}{
		{"RTSHIM_BIN_DIR", &binDir, []string{"containerd-shim-rt-v2"}},
		{"RTSHIM_TOOLS_DIR", &toolsDir, []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc"}},
		{"RTSHIM_ROOTFS", &rootfsDir, []string{"bin/sh", "bin/schedinfo"}},
	} {
		dir := os.Getenv(v.env)
		if dir == "" {
			return fmt.Errorf("%s is not set", v.env)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", v.env, dir, err)
		}
		for _, f := range v.files {
			if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
				return fmt.Errorf("%s=%s: %w", v.env, dir, err)
			}
		}
		*v.dst = abs
	}

	containerdDir = toolsDir
	if dir := os.Getenv("RTSHIM_CONTAINERD_DIR"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("RTSHIM_CONTAINERD_DIR=%s: %w", dir, err)
		}
		for _, f := range []string{"containerd", "ctr"} {
			if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
				return fmt.Errorf("RTSHIM_CONTAINERD_DIR=%s: %w", dir, err)
			}
		}
		containerdDir = abs
	}
	runcBin = filepath.Join(toolsDir, "runc")
	if p := os.Getenv("RTSHIM_RUNC"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("RTSHIM_RUNC=%s: %w", p, err)
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("RTSHIM_RUNC=%s: not an executable file (%v)", p, err)
		}
		runcBin = abs
	}

	out, err := exec.Command(filepath.Join(containerdDir, "containerd"), "--version").Output()
	if err != nil {
		return fmt.Errorf("containerd --version: %w", err)
	}
	// "containerd github.com/containerd/containerd/v2 v2.0.14 <commit>"
	if f := strings.Fields(string(out)); len(f) >= 3 {
		daemonVersion, err = parseRelease(f[2])
	}
	if err != nil || daemonVersion.major == 0 {
		return fmt.Errorf("containerd --version: no version in %q (%v)", out, err)
	}
	out, err = exec.Command(runcBin, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", runcBin, err)
	}
	// "runc version 1.1.5+ds1\ncommit: ...\nspec: 1.0.2-dev\n..."
	first, _, _ := strings.Cut(string(out), "\n")
	var ok bool
	if runcVersion, ok = strings.CutPrefix(first, "runc version "); !ok {
		return fmt.Errorf("%s --version: no version in %q", runcBin, out)
	}
	return nil
}

// release is a containerd release's version: v<major>.<minor>.<patch>.
type release struct {
	major, minor, patch int
	text                string
}

func (r release) String() string { return r.text }

// atLeast reports whether r is major.minor or later.
func (r release) atLeast(major, minor int) bool {
	return r.major > major || r.major == major && r.minor >= minor
}

// parseRelease parses "v2.0.14" (or "2.0.14", with any "-rc.1" or "+dev" suffix).
func parseRelease(s string) (release, error) {
	r := release{text: s}
	core, _, _ := strings.Cut(strings.TrimPrefix(s, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	if _, err := fmt.Sscanf(core, "%d.%d.%d", &r.major, &r.minor, &r.patch); err != nil {
		return r, fmt.Errorf("version %q: %w", s, err)
	}
	return r, nil
}

// requireRoot skips the test when the suite cannot run here (not root).
// Every test calls it first; startContainerd does too.
func requireRoot(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// writeFile writes content to dir/name (making dir/name's parent) and returns
// the path. For runtime config files, give it t.TempDir() or d.Dir.
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

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// sweepStale tears down what an earlier run left when it was killed before
// its cleanups ran (a go test timeout does that): temp dirs whose owning test
// process is gone, with their daemons, shims, containers and cgroups.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(tempRoot, tempPrefix+"*"))
	for _, dir := range dirs {
		if !isStale(dir) {
			continue
		}
		fmt.Printf("integration: cleaning up after an earlier run: %s\n", dir)
		errs := teardown(dir, nil)
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		}
	}

	// Namespaces whose temp dir is gone but whose cgroups or runc state
	// are not (an earlier cleanup failed half way).
	mounts, _ := cgroupMounts()
	for _, m := range append(mounts, filepath.Join(runContainerdDir, "runc")) {
		leftovers, _ := filepath.Glob(filepath.Join(m, tempPrefix+"*"))
		for _, p := range leftovers {
			ns := filepath.Base(p)
			if exists(filepath.Join(tempRoot, ns)) {
				continue
			}
			fmt.Printf("integration: cleaning up after an earlier run: %s\n", p)
			var errs []error
			if strings.HasPrefix(p, cgroupRoot+"/") {
				if err := killCgroupTree("/"+ns, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
				errs = append(errs, removeCgroupTree("/"+ns)...)
			} else if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
			for _, err := range errs {
				fmt.Fprintf(os.Stderr, "integration: %v\n", err)
			}
		}
	}
}

// isStale reports whether dir's owner (the test binary that made it) is gone.
func isStale(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		// No owner yet: stale only if it is not being set up right now.
		st, err := os.Stat(dir)
		return err == nil && time.Since(st.ModTime()) > time.Minute
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		return true
	}
	return !processAlive(pid)
}

// foreignRun reports whether name (a temp dir's, so a namespace's) belongs
// to another live test binary: a concurrent run, whose state is not ours to
// judge or remove.
func foreignRun(name string) bool {
	if !strings.HasPrefix(name, tempPrefix) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(tempRoot, name, ownerFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid != os.Getpid() && processAlive(pid)
}

// othersRunning reports whether another test binary has live daemons.
func othersRunning() bool {
	dirs, _ := filepath.Glob(filepath.Join(tempRoot, tempPrefix+"*"))
	return slices.ContainsFunc(dirs, func(dir string) bool { return foreignRun(filepath.Base(dir)) })
}

// runContainerdDir is where shims and runc keep state that containerd's own
// root and state settings do not move: runc's root (runc/<namespace>), shim
// sockets of shims built with containerd < 2.3 libraries (s/<sha256>).
const runContainerdDir = "/run/containerd"

// tidyRunDir removes runContainerdDir's directories once they are empty,
// and reports what the run left there: runc state of a test namespace, and,
// when the run created runContainerdDir (strict), anything. While another
// test binary runs, it does nothing: the state may be that run's.
func tidyRunDir(strict bool) error {
	if othersRunning() {
		return nil
	}
	var left []string
	for _, sub := range []string{"runc", "s", "fifo"} {
		p := filepath.Join(runContainerdDir, sub)
		if err := os.Remove(p); err == nil || errors.Is(err, os.ErrNotExist) {
			continue
		}
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if strict || strings.HasPrefix(e.Name(), tempPrefix) {
				left = append(left, filepath.Join(p, e.Name()))
			}
		}
	}
	if err := os.Remove(runContainerdDir); err != nil && !errors.Is(err, os.ErrNotExist) && strict && len(left) == 0 {
		left = append(left, runContainerdDir)
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, " "))
	}
	return nil
}
