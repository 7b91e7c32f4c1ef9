//go:build linux

package harness

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

	"github.com/moby/sys/mountinfo"
)

// Cgroup helpers for both cgroup versions; cgroup_v1.go and cgroup_v2.go have the rest.

// CgroupRoot is where the host mounts its cgroup hierarchies.
const CgroupRoot = "/sys/fs/cgroup"

// cgroupMounts returns the mount points of every cgroup hierarchy (v1 and the v2 one of a
// hybrid host).
func cgroupMounts() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(mounts))
	for _, m := range mounts {
		dirs = append(dirs, m.Mountpoint)
	}
	return dirs, nil
}

// CgroupTree returns rel's directory and all its descendants in every hierarchy, deepest
// first.
func CgroupTree(rel string) ([]string, error) {
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

// KillCgroupTree SIGKILLs every process in rel's cgroups (all hierarchies), thawing frozen
// ones first, and waits up to timeout for them to be gone.
func KillCgroupTree(rel string, timeout time.Duration) error {
	dirs, err := CgroupTree(rel)
	if err != nil {
		return err
	}
	// Thaw top-down: a frozen process cannot die, and a child cannot thaw under a frozen
	// parent.
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.WriteFile(filepath.Join(dirs[i], "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(dirs[i], "cgroup.freeze"), []byte("0"), 0)
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		var pids []int
		for _, dir := range dirs {
			pids = append(pids, CgroupProcs(dir)...)
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
	}
}

// CgroupProcs lists the pids in cgroup directory dir (cgroup.procs).
func CgroupProcs(dir string) []int {
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

// RemoveCgroupTree removes rel's cgroups in every hierarchy, deepest first.
func RemoveCgroupTree(rel string) []error {
	dirs, err := CgroupTree(rel)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, dir := range dirs {
		if err := RemoveCgroup(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// RemoveCgroup rmdirs one cgroup directory, retrying EBUSY for up to 2 s: the kernel lets go
// of a cgroup a moment after its last process exits (longer under emulation).
func RemoveCgroup(dir string) error {
	var err error
	for range 100 {
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

// ReadInt reads a file holding one integer (a cgroup's), failing the test if it cannot.
func ReadInt(t testing.TB, path string) int64 {
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
