//go:build linux

package harness

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Cgroup v1 helpers: the cpu hierarchy, where RT group scheduling keeps its budgets.

// CPUV1 returns the path of cgroup rel (e.g. d.CgroupPath(id), or "/") in the v1 cpu
// hierarchy.
func CPUV1(rel string) string { return filepath.Join(CgroupRoot, "cpu", rel) }

// CPUFile is a file of container id's cgroup in the v1 cpu hierarchy.
func (d *Daemon) CPUFile(id, file string) string {
	return filepath.Join(CPUV1(d.CgroupPath(id)), file)
}

// RTGroupSched reports whether the host has cgroup v1 RT group scheduling (CONFIG_RT_GROUP_SCHED):
// a cpu.rt_runtime_us at the cpu hierarchy's root.
func RTGroupSched() bool { return Exists(CPUV1("cpu.rt_runtime_us")) }

// RequireRTGroupSched skips unless the host has cgroup v1 RT group scheduling.
func RequireRTGroupSched(t testing.TB) {
	t.Helper()
	if !RTGroupSched() {
		t.Skip("needs cgroup v1 with CONFIG_RT_GROUP_SCHED (no cpu.rt_runtime_us at the cpu hierarchy's root)")
	}
}

// RootRTAvailable is the RT runtime the host's root cpu cgroup has left for new groups: its
// own less what its children hold.
func RootRTAvailable(t testing.TB) int64 {
	t.Helper()
	root := CPUV1("/")
	avail := ReadInt(t, filepath.Join(root, "cpu.rt_runtime_us"))
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			avail -= ReadInt(t, filepath.Join(root, e.Name(), "cpu.rt_runtime_us"))
		}
	}
	return avail
}

// CPUCgroupOf is pid's cgroup in the v1 cpu hierarchy, from /proc/<pid>/cgroup.
func CPUCgroupOf(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpu") {
			return f[2]
		}
	}
	t.Fatalf("pid %d: no cpu cgroup in:\n%s", pid, b)
	return ""
}

// cpuTreeFiles are the files SnapshotCPUTree records in every cpu cgroup.
var cpuTreeFiles = []string{"cpu.rt_runtime_us", "cpu.cfs_quota_us"}

// SnapshotCPUTree records every cpu.rt_runtime_us and cpu.cfs_quota_us in the v1 cpu
// hierarchy: file path → value. Take one before and one after (DiffCPUTree, AssertRestored)
// to prove a test gave back every budget it granted. The namespaces of concurrent test runs
// (another live test binary's daemons) are left out. Tests that compare snapshots must not
// call t.Parallel.
func SnapshotCPUTree(t testing.TB) map[string]string {
	t.Helper()
	snap := map[string]string{}
	root := CPUV1("/")
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
		if filepath.Dir(path) == root && ForeignRun(d.Name()) {
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

// DiffCPUTree lists the differences between two SnapshotCPUTree results, one line each
// ("path: before -> after", "<none>" for a file that is not there), sorted; empty when they
// are equal.
func DiffCPUTree(before, after map[string]string) []string {
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

// Residue lists what d's containers left since before (a SnapshotCPUTree): differences in
// the cpu cgroup tree, other than cgroups that did not exist before and hold no budget and no
// quota now (the namespace cgroup that runc creates, and removes nowhere), and rtshim's claims
// of d's containers ("claim <file>"). Namespaces of other test daemons (another go test on the
// same host) are left out.
func (d *Daemon) Residue(t testing.TB, before map[string]string) []string {
	t.Helper()
	diff, claims := d.residue(t, before)
	for _, c := range claims {
		diff = append(diff, "claim "+c)
	}
	return diff
}

// AssertRestored fails the test with the Residue since before, if there is any.
func (d *Daemon) AssertRestored(t testing.TB, before map[string]string) {
	t.Helper()
	diff, claims := d.residue(t, before)
	if len(diff) > 0 {
		t.Errorf("cpu cgroup tree not restored:\n%s", strings.Join(diff, "\n"))
	}
	if len(claims) > 0 {
		t.Errorf("rtshim claims left: %v", claims)
	}
}

func (d *Daemon) residue(t testing.TB, before map[string]string) (diff, claims []string) {
	t.Helper()
	before = maps.Clone(before)
	after := SnapshotCPUTree(t)
	foreign := func(k string, _ string) bool {
		rel := strings.TrimPrefix(strings.TrimPrefix(k, CPUV1("/")), "/")
		return strings.HasPrefix(rel, TempPrefix) && !strings.HasPrefix(rel, d.Namespace+"/")
	}
	maps.DeleteFunc(before, foreign)
	maps.DeleteFunc(after, foreign)
	for k, v := range after {
		if _, ok := before[k]; !ok && (v == "0" || v == "-1") {
			before[k] = v
		}
	}
	return DiffCPUTree(before, after), d.ClaimsOf(t)
}
