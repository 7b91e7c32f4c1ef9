//go:build linux

package k8stest

import (
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

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/harness"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cpuCgroup is the path of cgroup rel (e.g. "/kubepods/pod<uid>") in the cpu hierarchy.
func cpuCgroup(rel string) string { return filepath.Join(cgroupRoot, "cpu", rel) }

// readInt reads a file holding one integer (a cgroup or proc file).
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func mustReadInt(t testing.TB, path string) int64 {
	t.Helper()
	v, err := readInt(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// schedOf is the scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO, 2 SCHED_RR) and RT priority
// of pid, from the kernel (sched_getattr).
func schedOf(pid int) (policy, priority uint32, err error) {
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("sched_getattr(%d): %w", pid, err)
	}
	return a.Policy, a.Priority, nil
}

// cpuTreeFiles are the files snapshotCPUTree records in every cpu cgroup.
var cpuTreeFiles = []string{"cpu.rt_runtime_us", "cpu.cfs_quota_us"}

// snapshotCPUTree records every cpu.rt_runtime_us and cpu.cfs_quota_us of the v1 cpu
// hierarchy: path → value. One before and one after (harness.DiffCPUTree) prove a test gave back every
// budget and quota it changed.
func snapshotCPUTree(t testing.TB) map[string]string {
	t.Helper()
	snap := map[string]string{}
	root := cpuCgroup("/")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		for _, name := range cpuTreeFiles {
			if b, err := os.ReadFile(filepath.Join(path, name)); err == nil {
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

// killCgroupTree SIGKILLs every process in rel's cgroups (all hierarchies), thawing frozen
// ones first, and waits up to 10 s for them to be gone. It returns what it killed.
func killCgroupTree(rel string) ([]int, error) {
	dirs, err := harness.CgroupTree(rel)
	if err != nil {
		return nil, err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.WriteFile(filepath.Join(dirs[i], "freezer.state"), []byte("THAWED"), 0)
	}
	var killed []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pids []int
		for _, dir := range dirs {
			pids = append(pids, harness.CgroupProcs(dir)...)
		}
		if len(pids) == 0 {
			return killed, nil
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("processes %v still in cgroup %s after 10s", pids, rel)
		}
		for _, pid := range pids {
			if !slices.Contains(killed, pid) {
				killed = append(killed, pid)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroupTree removes rel's cgroups in every hierarchy, deepest first, retrying EBUSY
// briefly (the kernel lets go of a cgroup a moment after its last process exits).
func removeCgroupTree(rel string) []error {
	dirs, err := harness.CgroupTree(rel)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, dir := range dirs {
		var err error
		for range 100 {
			if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errs
}

// mountsUnder lists the host's mounts (this process's namespace) at or below dir.
func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
