//go:build linux

package k8stest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testCPUManager is issue point 3's CPU manager: with the static policy (CPU 0 reserved), a
// Guaranteed RT pod with an integer CPU gets CPU 1 exclusively from the kubelet and runs
// SCHED_FIFO there, a BestEffort RT pod runs in the shared pool (CPU 0), and the
// kubelet's periodic cpuset reconcile undoes nothing the shim set.
func testCPUManager(t *testing.T, c *cluster) {
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	if err := c.node.restartKubelet(nodeOpts{cpuManagerStatic: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.deletePods(t, "rt-pinned", "rt-shared")
		if err := c.node.restartKubelet(nodeOpts{}); err != nil {
			t.Errorf("kubelet back to the none policy: %v", err)
		}
	})
	budget := contribBudget(t)
	ann := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "20"}
	c.apply(t, toJSON(t, rtPod("rt-pinned", "rt", ann, "1", "1", "app")))
	// The node's allocatable CPU is 1 (2 less the reserved one): the other pod is BestEffort.
	c.apply(t, toJSON(t, rtPod("rt-shared", "rt", ann, "", "", "app")))
	pinned := c.waitRunning(t, "rt-pinned")
	shared := c.waitRunning(t, "rt-shared")

	check := func(when string) {
		t.Helper()
		for _, x := range []struct {
			p    *pod
			cpus string
		}{{pinned, "1"}, {shared, "0"}} {
			checkRT(t, x.p, "app", 1, 20, budget, -1)
			checkCgroup(t, x.p.Metadata.Name+" pod", x.p.podCgroup(), map[string]int64{"cpu.cfs_quota_us": -1, "cpu.rt_runtime_us": budget})
			file := filepath.Join(cgroupRoot, "cpuset", x.p.podCgroup(), x.p.containerID("app"), "cpuset.cpus")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); got != x.cpus {
				t.Errorf("%s: %s: cpuset.cpus %q, want %q", when, x.p.Metadata.Name, got, x.cpus)
			}
			pid := x.p.initPID(t, "app")
			var set unix.CPUSet
			if err := unix.SchedGetaffinity(pid, &set); err != nil {
				t.Fatal(err)
			}
			if got := cpuList(set); got != x.cpus {
				t.Errorf("%s: %s (pid %d): affinity %s, want %s", when, x.p.Metadata.Name, pid, got, x.cpus)
			}
		}
	}
	check("started")
	// Two reconcile periods of the CPU manager (2 s in the kubelet's config) and a kubelet
	// sync: the kubelet rewrites every container's cpuset through the runtime.
	time.Sleep(5 * time.Second)
	check("after the CPU manager's reconcile")
	state, _ := os.ReadFile(c.node.dir("kubelet", "cpu_manager_state"))
	t.Logf("cpu_manager_state: %s", state)

	c.deletePods(t, "rt-pinned", "rt-shared")
	waitCgroupsGone(t, pinned, shared)
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}

// cpuList is a CPU set as the kernel lists single CPUs and ranges of two: "0", "1", "0,1".
func cpuList(s unix.CPUSet) string {
	var cpus []string
	for i := range 1024 {
		if s.IsSet(i) {
			cpus = append(cpus, fmt.Sprint(i))
		}
	}
	return strings.Join(cpus, ",")
}
