//go:build linux

package integration

// Helpers of the hardening tests (issue 10): hardening_test.go, runcrt_hardening_test.go.
//
//	d.ctrRun(t, ctrRunOpts)           ctr run with a namespace, config, cgroups path, runc binary
//	d.removeIn(t, ns, id)             kill and delete a container of any namespace
//	claimRecords(t)                   the claims in the state dir, by content
//	releaseLeftovers(t, owns, tops)   fail on, and give back, claims and baselines a test left
//	releaseLeftoversOf(t, &d, ...)    the same for a daemon's namespaces
//	demoteCgroup(rel)                 every thread of a cgroup to SCHED_OTHER (chrt -o)
//	killTimed(t, pid, rel, kill)      how long a kill takes to end a process
//	assertCPUTreeBack(t, before, ...) the cpu tree as before, for the namespaces named

import (
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/harness"
	"github.com/rtshim/rtshim/rtcontainer"
)

// emptyConfig is an rtshim config that changes nothing: the built-in defaults. The hardening
// tests name the config of each container, so that what they test does not depend on the
// suite's permissive one (and an older shim, which knows fewer keys, reads it too).
const emptyConfig = "# no keys: the built-in defaults\n"

// allowAllConfig allows everything the kernel does: the limits under which grant mode may hand
// a program CAP_SYS_NICE.
const allowAllConfig = `[limits]
max_priority = 99
min_nice = -20
max_rt_runtime_us = 950000
max_pod_rt_runtime_us = 950000
`

// strictGrantConfig allows FIFO, RR and OTHER up to priority 10: what a granted program may
// set itself must stay inside that.
const strictGrantConfig = `[defaults]
priority = 10
[limits]
allowed_policies = ["SCHED_FIFO", "SCHED_RR", "SCHED_OTHER"]
max_priority = 10
`

// rtDaemon is a harness.Daemon with the hardening tests' own helpers.
type rtDaemon struct{ *harness.Daemon }

// ctrRunOpts is a container for rtDaemon.ctrRun: harness.RunOpts plus a containerd namespace.
type ctrRunOpts struct {
	ns         string // containerd namespace; default d.Namespace
	id         string
	runtime    string // default harness.RTRuntime
	runcBinary string // --runc-binary (the stock runtime's runc)
	config     string // --runtime-config-path
	cgroup     string // --cgroup: linux.cgroupsPath; default ctr's /<ns>/<id>
	ann        map[string]string
	env        []string
	quota      int64 // --cpu-quota, µs per --cpu-period 100000; 0: none
	detach     bool  // output goes to d.OutputFile(logName(ns, id))
	args       []string
}

// logName names the output file of container ns/id of daemon d.
func (d rtDaemon) logName(ns, id string) string {
	if ns == "" || ns == d.Namespace {
		return id
	}
	return ns + "_" + id
}

// ctrRun runs a container with ctr run (--rm unless detached) and returns ctr's stdout (the
// container's output, when not detached). err quotes ctr's stderr; a container whose create
// failed is deleted.
func (d rtDaemon) ctrRun(t testing.TB, o ctrRunOpts) (string, error) {
	t.Helper()
	ns := cmp.Or(o.ns, d.Namespace)
	args := []string{"run", "--runtime", cmp.Or(o.runtime, harness.RTRuntime)}
	if o.runcBinary != "" {
		args = append(args, "--runc-binary", o.runcBinary)
	}
	if o.config != "" {
		args = append(args, "--runtime-config-path", o.config)
	}
	if o.cgroup != "" {
		args = append(args, "--cgroup", o.cgroup)
	}
	for _, k := range slices.Sorted(maps.Keys(o.ann)) {
		args = append(args, "--annotation", k+"="+o.ann[k])
	}
	for _, e := range o.env {
		args = append(args, "--env", e)
	}
	if o.quota != 0 {
		args = append(args, "--cpu-quota", strconv.FormatInt(o.quota, 10), "--cpu-period", "100000")
	}
	if o.detach {
		args = append(args, "--detach", "--log-uri", "file://"+d.OutputFile(d.logName(ns, o.id)))
	} else {
		args = append(args, "--rm", "--fifo-dir", filepath.Join(d.Dir, "fifo"))
	}
	args = append(append(args, "--rootfs", env.Rootfs, o.id), o.args...)
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	out, _, err := d.CtrContext(ctx, ns, args...)
	if err != nil {
		_, _, _ = d.CtrContext(ctx, ns, "containers", "delete", o.id)
	}
	return out, err
}

// startIn runs a detached container and waits until its output says want.
func (d rtDaemon) startIn(t testing.TB, o ctrRunOpts, want string) {
	t.Helper()
	o.detach = true
	if _, err := d.ctrRun(t, o); err != nil {
		t.Fatal(err)
	}
	harness.WaitForFile(t, d.OutputFile(d.logName(o.ns, o.id)), want, env.Timeouts.Output)
}

// removeIn kills and deletes container id of namespace ns (d's if ""), as `docker rm -f` does.
func (d rtDaemon) removeIn(t testing.TB, ns, id string) {
	t.Helper()
	ns = cmp.Or(ns, d.Namespace)
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	_, _, _ = d.CtrContext(ctx, ns, "tasks", "kill", "-s", "SIGKILL", id)
	for {
		_, stderr, err := d.CtrContext(ctx, ns, "tasks", "delete", id)
		if err == nil || strings.Contains(stderr, "not found") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("delete task %s/%s: %v", ns, id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := d.CtrContext(ctx, ns, "containers", "delete", id); err != nil {
		t.Fatalf("delete container %s/%s: %v", ns, id, err)
	}
}

// claimRecord is a claim in the state dir, read by its content (not its file name, whose
// encoding is one of the things under test).
type claimRecord struct {
	File      string `json:"-"`
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	Leaf      string `json:"leaf"`
	RuntimeUS int64  `json:"rt_runtime_us"`
}

// claimRecords lists the readable claims in harness.StateDir/claims.
func claimRecords(t testing.TB) []claimRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(harness.StateDir, "claims", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []claimRecord
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // released meanwhile
		}
		c := claimRecord{File: filepath.Base(f)}
		if json.Unmarshal(b, &c) == nil {
			out = append(out, c)
		}
	}
	return out
}

// claimOfContainer is container ns/id's claim, nil if it has none.
func claimOfContainer(t testing.TB, ns, id string) *claimRecord {
	t.Helper()
	for _, c := range claimRecords(t) {
		if c.Namespace == ns && c.ID == id {
			return &c
		}
	}
	return nil
}

// wrapperRecords lists runc-rt's records and pending marks in the state dir whose name holds s.
func wrapperRecords(s string) []string {
	files, _ := filepath.Glob(filepath.Join(harness.StateDir, "wrapper", "*.json"))
	marks, _ := filepath.Glob(filepath.Join(harness.StateDir, "wrapper", "pending", "*"))
	files = append(files, marks...)
	return slices.DeleteFunc(files, func(f string) bool { return !strings.Contains(filepath.Base(f), s) })
}

// releaseLeftovers registers a cleanup that fails the test for every claim of a namespace
// owns accepts that is still in the state dir when the test ends, and gives it back (with
// rtcontainer's Forget, what runc-rt and containerd-shim-rt-v2 delete run), then for every
// baseline record left of a cgroup under one of the top-level cgroups tops names (once nothing
// holds a claim there, none may remain), which it removes: the host is as before whatever the
// test found. Call it before starting the daemons: cleanups run last first, so it then runs
// after theirs.
func releaseLeftovers(t *testing.T, owns func(ns string) bool, tops func() []string) {
	t.Cleanup(func() {
		for _, c := range claimRecords(t) {
			if !owns(c.Namespace) {
				continue
			}
			t.Errorf("claim of %s/%s (cgroup %s, %d µs) left after the test: %s; releasing it", c.Namespace, c.ID, c.Leaf, c.RuntimeUS, c.File)
			if err := rtcontainer.DefaultHost().Forget(context.Background(), harness.StateDir, c.Namespace, c.ID); err != nil {
				t.Errorf("release %s/%s: %v", c.Namespace, c.ID, err)
			}
		}
		files, _ := filepath.Glob(filepath.Join(harness.StateDir, "baselines", "*.json"))
		for _, f := range files {
			var b struct{ Cgroup, File, Value string }
			data, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(data, &b) != nil {
				continue
			}
			top := strings.SplitN(strings.TrimPrefix(b.Cgroup, "/"), "/", 2)[0]
			if !slices.Contains(tops(), top) {
				continue
			}
			t.Errorf("baseline of %s %s (%s) left after the test: %s; removing it", b.Cgroup, b.File, b.Value, f)
			if err := os.Remove(f); err != nil {
				t.Error(err)
			}
		}
	})
}

// releaseLeftoversOf is releaseLeftovers for the daemon *d (started after this call) and its
// other namespaces named by suffix (".b": <namespace>.b): the claims of its shims and of runc-rt
// under its runc shim (--root /run/containerd/runc/<namespace>), the baselines of its cgroups.
func releaseLeftoversOf(t *testing.T, d *rtDaemon, suffixes ...string) {
	nss := func() []string {
		if d.Daemon == nil {
			return nil // never started
		}
		out := []string{d.Namespace}
		for _, s := range suffixes {
			out = append(out, d.Namespace+s)
		}
		return out
	}
	releaseLeftovers(t, func(ns string) bool {
		return slices.ContainsFunc(nss(), func(n string) bool {
			return ns == n || ns == "runc:"+filepath.Join(harness.RunContainerdDir, "runc", n)
		})
	}, nss)
}

// demoteCgroup sets every thread in cgroup rel (the cpu hierarchy) to SCHED_OTHER, as an
// operator would with `chrt -a -o -p 0 PID`: a real-time thread throttled by a tiny budget runs
// again, and dies of a pending SIGKILL, only then. It returns how many threads it changed.
func demoteCgroup(rel string) int {
	b, err := os.ReadFile(filepath.Join(harness.CPUV1(rel), "tasks"))
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range strings.Fields(string(b)) {
		tid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if a, err := unix.SchedGetAttr(tid, 0); err != nil || a.Policy == unix.SCHED_NORMAL {
			continue
		}
		if unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0) == nil {
			n++
		}
	}
	return n
}

// Bounds of killTimed: a kill must end the process within killBound; one still alive after
// killGiveUp is demoted so that the test can clean up.
const (
	killBound  = 10 * time.Second
	killGiveUp = 30 * time.Second
)

// killTimed runs kill (ctr task kill -s SIGKILL, runc-rt kill, runc-rt delete --force; it may
// block until the process is gone) and returns how long process pid took to die. A process
// still alive after killGiveUp is demoted (demoteCgroup of cgroup rel) and waited for; died
// is then false and took the time given up after. kill's error, once it returns, is a test
// error.
func killTimed(t *testing.T, pid int, rel string, kill func() error) (took time.Duration, died bool) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- kill() }()
	for harness.ProcessAlive(pid) && time.Since(start) < killGiveUp {
		time.Sleep(5 * time.Millisecond)
	}
	took, died = time.Since(start), !harness.ProcessAlive(pid)
	if !died {
		n := demoteCgroup(rel)
		t.Logf("pid %d still alive %v after the kill: demoted %d thread(s) to SCHED_OTHER", pid, took.Round(time.Millisecond), n)
		for deadline := time.Now().Add(killBound); harness.ProcessAlive(pid) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if harness.ProcessAlive(pid) {
			t.Errorf("pid %d still alive after it was demoted", pid)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("kill: %v", err)
		}
	case <-time.After(env.Timeouts.Ctr):
		t.Errorf("the kill command did not return within %v", env.Timeouts.Ctr)
	}
	return took, died
}

// onlyProcess is the one process in cgroup rel (the cpu hierarchy).
func onlyProcess(t testing.TB, rel string) int {
	t.Helper()
	pids := harness.CgroupProcs(harness.CPUV1(rel))
	if len(pids) != 1 {
		t.Fatalf("cgroup %s has processes %v, want one", rel, pids)
	}
	return pids[0]
}

// assertThrottled checks that pid, a SCHED_FIFO busy loop, is being held back by its RT budget:
// runnable, yet it got (almost) no CPU time in the last second. Only then does a kill test
// test anything.
func assertThrottled(t testing.TB, pid int) {
	t.Helper()
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil || a.Policy != unix.SCHED_FIFO {
		t.Fatalf("pid %d: policy %+v, %v; want SCHED_FIFO", pid, a, err)
	}
	before := cpuTime(t, pid)
	time.Sleep(time.Second)
	if used := cpuTime(t, pid) - before; used > 100*time.Millisecond {
		t.Fatalf("pid %d used %v of CPU in one second: not throttled by its budget", pid, used)
	}
}

// cpuTime is the user plus system time of process pid (/proc/<pid>/stat, at 100 ticks/s).
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// tickUS is one scheduler tick of the running kernel in µs (1/CONFIG_HZ, from
// /proc/config.gz): the smallest RT budget rtshim grants by default.
func tickUS(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		t.Fatalf("the kernel's CONFIG_HZ is needed: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CONFIG_HZ="); ok {
			hz, err := strconv.ParseInt(v, 10, 64)
			if err != nil || hz <= 0 {
				t.Fatalf("CONFIG_HZ=%q", v)
			}
			return 1000000 / hz
		}
	}
	t.Fatal("no CONFIG_HZ in /proc/config.gz")
	return 0
}

// assertCPUTreeBack fails when the cpu tree differs from before in the namespaces nss (their
// cgroups under the hierarchy's root) or outside every test namespace. Cgroups that did not
// exist before and hold no budget and no quota now (a namespace's cgroup, which runc creates and
// removes nowhere) do not count. See harness.Daemon.AssertRestored, which also checks the claims.
func assertCPUTreeBack(t testing.TB, before map[string]string, nss ...string) {
	t.Helper()
	after := harness.SnapshotCPUTree(t)
	root := harness.CPUV1("/")
	ours := func(k string) bool {
		rel := strings.TrimPrefix(strings.TrimPrefix(k, root), "/")
		if !strings.HasPrefix(rel, harness.TempPrefix) {
			return true
		}
		return slices.ContainsFunc(nss, func(ns string) bool { return strings.HasPrefix(rel, ns+"/") })
	}
	b, a := maps.Clone(before), maps.Clone(after)
	for _, m := range []map[string]string{b, a} {
		maps.DeleteFunc(m, func(k, _ string) bool { return !ours(k) })
	}
	for k, v := range a {
		if _, ok := b[k]; !ok && (v == "0" || v == "-1") {
			b[k] = v
		}
	}
	if diff := harness.DiffCPUTree(b, a); len(diff) > 0 {
		t.Errorf("cpu cgroup tree not as before:\n%s", strings.Join(diff, "\n"))
	}
}

// tryResults reads /bin/schedinfo's "try=<spec> ok|error:<why>" lines: spec → "ok" or the error.
func tryResults(out string) map[string]string {
	res := map[string]string{}
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "try="); ok {
			spec, result, _ := strings.Cut(rest, " ")
			res[spec] = result
		}
	}
	return res
}
