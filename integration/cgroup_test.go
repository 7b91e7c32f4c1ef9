//go:build linux

package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupV1Path returns the path of cgroup rel (e.g. d.CgroupPath(id), or
// "/") in the v1 hierarchy of subsys (e.g. "cpu").
func cgroupV1Path(subsys, rel string) string {
	return filepath.Join(cgroupRoot, subsys, rel)
}

// readCgroupInt reads a cgroup file holding one integer, failing the test if
// it cannot.
func readCgroupInt(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// cpuTreeFiles are the files snapshotCPUTree records in every cpu cgroup.
var cpuTreeFiles = []string{"cpu.rt_runtime_us", "cpu.cfs_quota_us"}

// snapshotCPUTree records every cpu.rt_runtime_us and cpu.cfs_quota_us in
// the v1 cpu hierarchy: file path → value. Take one before and one after
// (with diffCPUTree) to prove a test gave back every budget it granted.
// The namespaces of concurrent test runs (another live test binary's
// daemons) are left out.
func snapshotCPUTree(t testing.TB) map[string]string {
	t.Helper()
	snap := map[string]string{}
	root := cgroupV1Path("cpu", "/")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if filepath.Dir(path) == root && foreignRun(d.Name()) {
			return filepath.SkipDir
		}
		for _, name := range cpuTreeFiles {
			b, err := os.ReadFile(filepath.Join(path, name))
			if err == nil {
				snap[filepath.Join(path, name)] = strings.TrimSpace(string(b))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return snap
}

// diffCPUTree lists the differences between two snapshotCPUTree results, one
// line each ("path: before -> after", "<none>" for a file that is not there),
// sorted; empty when they are equal.
func diffCPUTree(before, after map[string]string) []string {
	var diff []string
	for path, b := range before {
		if a, ok := after[path]; !ok {
			diff = append(diff, fmt.Sprintf("%s: %s -> <none>", path, b))
		} else if a != b {
			diff = append(diff, fmt.Sprintf("%s: %s -> %s", path, b, a))
		}
	}
	for path, a := range after {
		if _, ok := before[path]; !ok {
			diff = append(diff, fmt.Sprintf("%s: <none> -> %s", path, a))
		}
	}
	slices.Sort(diff)
	return diff
}

// cgroupMounts returns the mount points of every cgroup hierarchy (v1 and the
// v2 one of a hybrid host), from /proc/self/mountinfo.
func cgroupMounts() ([]string, error) {
	mounts, err := readMountInfo()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range mounts {
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			dirs = append(dirs, m.point)
		}
	}
	return dirs, nil
}

// cgroupTree returns rel's directory and all its descendants in every
// hierarchy, deepest first.
func cgroupTree(rel string) ([]string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range mounts {
		err := filepath.WalkDir(filepath.Join(m, rel), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return dirs, nil
}

// killCgroupTree SIGKILLs every process in rel's cgroups (all hierarchies),
// thawing frozen ones first, and waits up to timeout for them to be gone.
func killCgroupTree(rel string, timeout time.Duration) error {
	dirs, err := cgroupTree(rel)
	if err != nil {
		return err
	}
	// Thaw top-down: a frozen process cannot die, and a child cannot thaw
	// under a frozen parent.
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.WriteFile(filepath.Join(dirs[i], "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(dirs[i], "cgroup.freeze"), []byte("0"), 0)
	}
	deadline := time.Now().Add(timeout)
	for {
		var pids []int
		for _, dir := range dirs {
			pids = append(pids, cgroupProcs(dir)...)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroup %s after %v", pids, rel, timeout)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cgroupProcs(dir string) []int {
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var pids []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		if pid, err := strconv.Atoi(strings.TrimSpace(s.Text())); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroupTree removes rel's cgroups in every hierarchy, deepest first.
func removeCgroupTree(rel string) []error {
	dirs, err := cgroupTree(rel)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, dir := range dirs {
		if err := removeCgroup(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeCgroup rmdirs one cgroup, retrying EBUSY briefly: the kernel lets go
// of a cgroup a moment after its last process exits.
func removeCgroup(dir string) error {
	var err error
	for range 50 {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}
