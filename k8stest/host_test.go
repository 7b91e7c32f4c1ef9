//go:build linux

package k8stest

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

	"golang.org/x/sys/unix"
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
// hierarchy: path → value. One before and one after (diffTree) prove a test gave back every
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

// diffTree lists the differences between two snapshots, one sorted line each.
func diffTree(before, after map[string]string) []string {
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

// cgroupMounts are the mount points of every cgroup hierarchy (v1, and a hybrid host's v2).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(s.Text())
		i := slices.Index(fields, "-")
		if i > 4 && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
			dirs = append(dirs, fields[4])
		}
	}
	return dirs, s.Err()
}

// cgroupTree is rel's cgroup and all its descendants in every hierarchy, deepest first.
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
	slices.SortStableFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return dirs, nil
}

// cgroupProcs lists the processes of one cgroup directory.
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killCgroupTree SIGKILLs every process in rel's cgroups (all hierarchies), thawing frozen
// ones first, and waits up to 10 s for them to be gone. It returns what it killed.
func killCgroupTree(rel string) ([]int, error) {
	dirs, err := cgroupTree(rel)
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
			pids = append(pids, cgroupProcs(dir)...)
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
	dirs, err := cgroupTree(rel)
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
