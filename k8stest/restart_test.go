//go:build linux

package k8stest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// testRestart is issue point 3's restarts: the kubelet, then containerd, restarted under
// running RT pods (contrib's). The pods keep their containers, policy, budget and quota
// exemption; nothing is granted twice or leaked (the cpu tree and the claims are as before
// the restart); deleting them afterwards restores the tree.
func testRestart(t *testing.T, c *cluster) {
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	budget := contribBudget(t)
	manifests := contribPods(t)
	names := []string{"rt-demo", "rt-burstable"}
	c.applyContrib(t)
	t.Cleanup(func() { c.deletePods(t, names...) })
	pods := map[string]*pod{}
	for _, name := range names {
		pods[name] = c.waitRunning(t, name)
	}
	during := snapshotCPUTree(t)
	claims := c.node.claimsLeft()

	check := func(t *testing.T) {
		for _, name := range names {
			p, err := c.getPod(name)
			if err != nil {
				t.Fatal(err)
			}
			ann := annotationsOf(manifests[name])
			for _, cs := range p.Status.ContainerStatuses {
				if cs.ContainerID != "containerd://"+pods[name].containerID(cs.Name) || cs.RestartCount != 0 || cs.State.Running == nil {
					t.Errorf("%s/%s: container %s (restarts %d, running %v), was %s", name, cs.Name, cs.ContainerID, cs.RestartCount, cs.State.Running != nil, pods[name].containerID(cs.Name))
				}
				policy, prio := rtRequest(t, ann, cs.Name)
				checkRT(t, p, cs.Name, policy, prio, budget, -1)
			}
			checkCgroup(t, name+" pod", p.podCgroup(), map[string]int64{"cpu.cfs_quota_us": -1})
		}
		if diff := harness.DiffCPUTree(during, snapshotCPUTree(t)); len(diff) > 0 {
			t.Errorf("cpu tree changed across the restart:\n%s", strings.Join(diff, "\n"))
		}
		if got := c.node.claimsLeft(); !slices.Equal(got, claims) {
			t.Errorf("rtshim claims %v, before the restart %v", got, claims)
		}
	}

	t.Run("kubelet", func(t *testing.T) {
		start := time.Now()
		if err := c.node.restartKubelet(c.node.opts); err != nil {
			t.Fatal(err)
		}
		t.Logf("kubelet restarted and node Ready in %v", time.Since(start).Round(time.Millisecond))
		// Let the new kubelet sync every pod (it does so at once, and again on its resync).
		time.Sleep(5 * time.Second)
		check(t)
	})
	t.Run("containerd", func(t *testing.T) {
		start := time.Now()
		if err := c.node.restartContainerd(); err != nil {
			t.Fatal(err)
		}
		t.Logf("containerd restarted in %v", time.Since(start).Round(time.Millisecond))
		time.Sleep(5 * time.Second)
		check(t)
		// The new containerd reaches the running shims: exec goes through.
		out, err := c.kubectl("exec", "rt-demo", "-c", "ctl1", "--", "/bin/schedinfo")
		if err != nil {
			t.Fatal(err)
		}
		if s, err := harness.ParseSchedOutput(out); err != nil || s["policy"] != "SCHED_OTHER" {
			t.Errorf("kubectl exec after the containerd restart: %v %v, want SCHED_OTHER", s, err)
		}
	})

	c.deletePods(t, names...)
	for _, p := range pods {
		waitCgroupsGone(t, p)
	}
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}
