//go:build linux

package k8stest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// kubepods is the kubelet's cgroup root for pods (cgroupfs driver, cgroup root "/"), which it
// makes in every hierarchy.
const kubepods = "/kubepods"

// hostPaths are where a kubelet, CNI, containerd and runc write by default; the node's mount
// namespace keeps them off the host, and teardown checks that it did.
var hostPaths = []string{"/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni",
	"/run/containerd", "/var/lib/containerd", "/etc/kubernetes", "/usr/libexec/kubernetes", "/var/run/kubernetes"}

// teardown deletes the pods, stops the kubelet, removes what CRI left, stops containerd and the
// control plane, kills leftovers, removes the kubepods cgroups and the dir, and fails t for
// anything the cluster left on the host: a process, a cgroup, an RT budget, a quota, an rtshim
// claim, a mount or a file.
func (c *cluster) teardown(t testing.TB, before map[string]string) {
	start := time.Now()
	fail := func(format string, args ...any) { t.Errorf("teardown: "+format, args...) }
	n := c.node

	if c.apiserver.running() && n != nil && n.kubelet.running() {
		for _, kind := range []string{"daemonsets", "pods"} {
			if _, err := c.kubectl("delete", kind, "--all", "--all-namespaces", "--grace-period=1", "--wait=true", "--timeout=90s"); err != nil {
				fail("%v", err)
			}
		}
	}
	if n != nil {
		if err := n.kubelet.stop(30 * time.Second); err != nil {
			fail("%v", err)
		}
		// The kubelet removes dead containers lazily (container GC); what it did not yet
		// remove goes now, through containerd, so that every shim gives its budget back; so
		// do the containers a scenario ran outside Kubernetes.
		if n.containerd.running() {
			for _, ns := range []string{criNamespace, outsideNamespace} {
				for _, err := range n.removeContainers(ns) {
					fail("%v", err)
				}
			}
		}
		// Before the kubepods cgroups go, with their budgets: what every cgroup still holds.
		if dirs, err := harness.CgroupTree(kubepods); err == nil {
			for _, dir := range dirs {
				if v, err := readInt(filepath.Join(dir, "cpu.rt_runtime_us")); err == nil && v != 0 {
					fail("%s/cpu.rt_runtime_us = %d after every container was removed", dir, v)
				}
			}
		}
		for _, rel := range []string{kubepods, "/" + outsideNamespace} {
			if killed, err := killCgroupTree(rel); err != nil || len(killed) > 0 {
				fail("processes left in %s cgroups: %v %v", rel, killed, err)
			}
		}
		if err := n.containerd.stop(30 * time.Second); err != nil {
			fail("%v", err)
		}
		for _, sub := range []string{"claims", "baselines"} {
			if ents, err := os.ReadDir(filepath.Join(n.stateDir, sub)); err == nil && len(ents) > 0 {
				fail("rtshim %s left in %s: %v", sub, n.stateDir, names(ents))
			}
		}
	}
	for _, p := range []*proc{c.controllerManager, c.scheduler, c.apiserver, c.etcd} {
		if err := p.stop(30 * time.Second); err != nil {
			fail("%v", err)
		}
	}
	// The shims (after containerd, as a node's service manager leaves them) and the mount
	// namespace's holder; with them goes the namespace and every mount in it.
	if n != nil && n.holder != nil {
		pids := processesUsing(c.dir)
		if err := killAll(pids); err != nil {
			fail("%v", err)
		}
		_ = n.holder.stop(time.Second)
	}
	for _, rel := range []string{kubepods, "/" + outsideNamespace} {
		for _, err := range removeCgroupTree(rel) {
			fail("%v", err)
		}
	}
	c.phases = append(c.phases, phase{"teardown", time.Since(start)})

	if pids := processesUsing(c.dir); len(pids) > 0 {
		fail("processes left: %v", pids)
	}
	if m := mountsUnder(c.dir); len(m) > 0 {
		fail("mounts left: %v", m)
	}
	for _, pattern := range []string{"kubepods*", outsideNamespace} {
		if left, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", pattern)); len(left) > 0 {
			fail("cgroups left: %v", left)
		}
	}
	if diff := harness.DiffCPUTree(before, snapshotCPUTree(t)); len(diff) > 0 {
		fail("cpu cgroup tree not as before:\n%s", strings.Join(diff, "\n"))
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil && !existedBefore[p] {
			fail("%s was created on the host", p)
		}
	}
	if t.Failed() {
		c.saveLogs(t)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		fail("%v", err)
	}
	var report []string
	for _, p := range c.phases {
		report = append(report, fmt.Sprintf("%s %v", p.name, p.took.Round(time.Millisecond)))
	}
	t.Logf("phases: %s", strings.Join(report, ", "))
}

// existedBefore records which hostPaths existed before the run (sweepStale fills it).
var existedBefore = map[string]bool{}

// removeContainers kills and removes every task and container in namespace ns.
func (n *node) removeContainers(ns string) []error {
	out, err := n.ctrIn(ns, "containers", "ls", "-q")
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		_, _ = n.ctrIn(ns, "tasks", "kill", "-s", "SIGKILL", id)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := n.ctrIn(ns, "tasks", "delete", id)
			if err == nil || strings.Contains(err.Error(), "not found") {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("delete task %s: %w", id, err))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := n.ctrIn(ns, "containers", "delete", id); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// saveLogs copies the daemons' logs to $RTSHIM_K8S_LOG_DIR (make test-k8s sets it) and logs
// their tails.
func (c *cluster) saveLogs(t testing.TB) {
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	dst := os.Getenv("RTSHIM_K8S_LOG_DIR")
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if dst != "" && os.MkdirAll(dst, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(l)), b, 0o644)
		}
		if filepath.Base(l) == "mount-namespace.log" {
			continue // its script, and nothing else unless it failed to start
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-5):]
		t.Logf("%s (last lines):\n%s", filepath.Base(l), strings.Join(lines, "\n"))
	}
	if dst != "" {
		t.Logf("daemon logs saved in %s", dst)
	}
}

func names(ents []fs.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// sweepStale removes what an earlier run left when it was killed before its cleanup (a go test
// timeout does that): its shims and containers, the kubepods cgroups, its dir. Then it notes
// which of hostPaths exist, for teardown's check.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			// No owner yet: being set up right now, unless it is old.
			if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) < time.Minute {
				continue
			}
		} else if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); processAlive(pid) {
			continue
		}
		fmt.Printf("k8stest: cleaning up after an earlier run: %s\n", dir)
		if err := killAll(processesUsing(dir)); err != nil {
			fmt.Fprintf(os.Stderr, "k8stest: %v\n", err)
		}
		for _, rel := range []string{kubepods, "/" + outsideNamespace} {
			if _, err := killCgroupTree(rel); err != nil {
				fmt.Fprintf(os.Stderr, "k8stest: %v\n", err)
			}
			for _, err := range removeCgroupTree(rel) {
				fmt.Fprintf(os.Stderr, "k8stest: %v\n", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "k8stest: %v\n", err)
		}
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			existedBefore[p] = true
		}
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil && !isZombie(pid)
}
