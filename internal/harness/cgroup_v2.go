//go:build linux

package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Cgroup v2 helpers: cgroups are named relative to the unified hierarchy at CgroupRoot
// ("/a/b").

// CgroupOf reads process pid's cgroup v2 path from the "0::" line of /proc/<pid>/cgroup,
// independently of the shim's own parser.
func CgroupOf(t testing.TB, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p
		}
	}
	t.Fatalf("/proc/%d/cgroup has no 0:: line", pid)
	return ""
}

// ReadCgroup reads a file of cgroup cg.
func ReadCgroup(t testing.TB, cg, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(CgroupRoot, cg, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// CPUMax is cgroup cg's CFS quota and period: "max 100000", "50000 100000".
func CPUMax(t testing.TB, cg string) string {
	t.Helper()
	return ReadCgroup(t, cg, "cpu.max")
}

// CgroupExists reports whether cgroup cg exists.
func CgroupExists(cg string) bool { return Exists(filepath.Join(CgroupRoot, cg)) }

// MakePod creates a pod-level cgroup cg with CFS quota cpuMax ("50000 100000"), as kubelet
// does before the pod's containers, and removes it when the test ends.
func MakePod(t testing.TB, cg, cpuMax string) {
	t.Helper()
	dir := filepath.Join(CgroupRoot, cg)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveCgroup(dir); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(cpuMax), 0); err != nil {
		t.Fatal(err)
	}
}
