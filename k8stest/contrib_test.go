//go:build linux

package k8stest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// applyContrib applies contrib/kubernetes/ as a user does: the RuntimeClasses and the
// example pods, unchanged.
func (c *cluster) applyContrib(t testing.TB) {
	t.Helper()
	c.mustKubectl(t, "apply", "-f", contribKubernetes)
}

// testContrib is issue point 2: contrib/kubernetes/ applied unchanged, a Guaranteed and a
// Burstable RT pod (one with a per-container override) against control pods on the default
// runtime with the same resources; kubectl exec; a pod whose budget cannot fit; deleting
// everything gives the tree back.
func testContrib(t *testing.T, c *cluster) {
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	budget := contribBudget(t)
	pods := contribPods(t)
	for _, name := range []string{"rt-demo", "rt-burstable"} {
		if pods[name] == nil {
			t.Fatalf("contrib/kubernetes has no pod %s", name)
		}
	}
	c.applyContrib(t)
	// The controls: the same pods on the default runtime (the stock runc shim).
	controls := map[string]string{"rt-demo": "control-demo", "rt-burstable": "control-burstable"}
	for rt, name := range controls {
		m := cloneManifest(t, pods[rt])
		delete(m["spec"].(manifest), "runtimeClassName")
		m["metadata"].(manifest)["name"] = name
		c.apply(t, toJSON(t, m))
	}
	var all []*pod
	t.Cleanup(func() {
		// On failure, still leave nothing for the next scenario.
		var names []string
		for _, p := range all {
			names = append(names, p.Metadata.Name)
		}
		c.deletePods(t, append(names, "rt-demo", "rt-burstable", "control-demo", "control-burstable")...)
	})

	wantQoS := map[string]string{"rt-demo": "Guaranteed", "rt-burstable": "Burstable"}
	rtTotal := int64(0)
	for _, name := range []string{"rt-demo", "rt-burstable"} {
		m := pods[name]
		p := c.waitRunning(t, name)
		all = append(all, p)
		if p.Status.QOSClass != wantQoS[name] {
			t.Errorf("%s: QoS class %s, want %s", name, p.Status.QOSClass, wantQoS[name])
		}
		ann := annotationsOf(m)
		var podQuota int64
		for _, ctr := range p.Spec.Containers {
			policy, prio := rtRequest(t, ann, ctr.Name)
			c.firstInstruction(t, name, ctr.Name, policy, prio)
			checkRT(t, p, ctr.Name, policy, prio, budget, -1)
			podQuota += budget
		}
		rtTotal += podQuota
		checkCgroup(t, name+" pod cgroup", p.podCgroup(), map[string]int64{"cpu.rt_runtime_us": podQuota, "cpu.cfs_quota_us": -1})
		t.Logf("%s (%s): every container runs its policy and priority, budget %d µs each, quotas lifted", name, p.Status.QOSClass, budget)
	}
	// One shim serves a whole pod, pause container included, as the stock runc shim does.
	if shims := c.node.shimsRunning(filepath.Join(binDir, "containerd-shim-rt-v2")); len(shims) != 2 {
		t.Errorf("%d rtshim processes %v for the two RT pods, want one per pod", len(shims), shims)
	}
	checkCgroup(t, "QoS cgroup", "/kubepods/burstable", map[string]int64{"cpu.rt_runtime_us": budget})
	checkCgroup(t, "kubepods", "/kubepods", map[string]int64{"cpu.rt_runtime_us": rtTotal})

	// The controls keep their quotas and run SCHED_OTHER, with no budget anywhere.
	for rt, name := range controls {
		p := c.waitRunning(t, name)
		all = append(all, p)
		var podQuota int64
		for _, ctr := range pods[rt]["spec"].(manifest)["containers"].([]any) {
			cname := ctr.(manifest)["name"].(string)
			limit := field[string](ctr.(manifest), "resources", "limits", "cpu")
			milli, err := parseMilli(limit)
			if err != nil {
				t.Fatal(err)
			}
			checkRT(t, p, cname, 0, 0, 0, milliQuota(milli))
			c.firstInstruction(t, name, cname, 0, 0)
			podQuota += milliQuota(milli)
		}
		checkCgroup(t, name+" pod cgroup", p.podCgroup(), map[string]int64{"cpu.rt_runtime_us": 0, "cpu.cfs_quota_us": podQuota})
	}

	t.Run("exec", func(t *testing.T) {
		out, err := c.kubectl("exec", "rt-demo", "-c", "ctl1", "--", "/bin/schedinfo")
		if err != nil {
			t.Fatal(err)
		}
		s, err := harness.ParseSchedOutput(out)
		if err != nil {
			t.Fatal(err)
		}
		if s["policy"] != "SCHED_OTHER" {
			t.Errorf("kubectl exec into rt-demo: %v, want SCHED_OTHER", s)
		}
	})

	t.Run("refused", func(t *testing.T) { testRefused(t, c, rtTotal) })

	c.deletePods(t, "rt-demo", "rt-burstable", "control-demo", "control-burstable")
	waitCgroupsGone(t, all...)
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}

// testRefused: a pod asking for more budget than is left is refused; kubectl describe shows
// the cgroup, the requested and the available budget; nothing of it is granted, and deleting it
// leaves nothing. used is what the running RT pods hold. A filler pod first takes the most a
// pod may hold (contrib/rtshim.toml's limits), so that the same request then cannot fit.
func testRefused(t *testing.T, c *cluster, used int64) {
	maxPod := contribLimit(t, "max_pod_rt_runtime_us")
	want := min(contribLimit(t, "max_rt_runtime_us"), maxPod)
	root := mustReadInt(t, cpuCgroup("/")+"/cpu.rt_runtime_us")
	t.Cleanup(func() { c.deletePods(t, "rt-filler", "rt-too-big") })
	fill := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/rt-runtime-us": strconv.FormatInt(want, 10)}
	if used+2*want <= root {
		t.Fatalf("the test needs the host's %d µs to be less than %d held + 2 × %d asked", root, used, want)
	}
	c.apply(t, toJSON(t, rtPod("rt-filler", "rt", fill, "", "", "app")))
	filler := c.waitRunning(t, "rt-filler")
	used += want
	before := snapshotCPUTree(t)
	c.apply(t, toJSON(t, rtPod("rt-too-big", "rt", fill, "", "", "app")))
	avail := root - used
	wantMsg := regexp.MustCompile(fmt.Sprintf(`cgroup /kubepods cannot grant %d µs per 1000000 µs period, %d µs available`, want, avail))
	var msg string
	err := waitFor("the refusal in rt-too-big's events", 60*time.Second, nil, func() error {
		evs, err := c.eventsOf("rt-too-big")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Reason == "Failed" && strings.Contains(e.Message, "no RT budget") {
				msg = e.Message
				return nil
			}
		}
		return fmt.Errorf("events: %+v", evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("event: %s", msg)
	if !wantMsg.MatchString(msg) {
		t.Errorf("refusal event does not match %q: %s", wantMsg, msg)
	}
	if d := c.describePod("rt-too-big"); !wantMsg.MatchString(d) {
		t.Errorf("kubectl describe pod rt-too-big does not show %q:\n%s", wantMsg, d)
	}
	p, err := c.getPod("rt-too-big")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing was granted: the tree is as before but for the pod's own cgroups the kubelet
	// and the pause container made, which hold no budget.
	diff := harness.DiffCPUTree(before, snapshotCPUTree(t))
	for _, d := range diff {
		if !strings.Contains(d, "/pod"+p.Metadata.UID) || !strings.HasSuffix(d, "<none> -> 0") && !strings.HasSuffix(d, "<none> -> -1") {
			t.Errorf("refused pod changed the cpu tree: %s", d)
		}
	}
	c.deletePods(t, "rt-too-big")
	waitCgroupsGone(t, p)
	assertTreeRestored(t, before)
	c.deletePods(t, "rt-filler")
	waitCgroupsGone(t, filler)
}

// parseMilli parses a CPU quantity ("500m", "1", "0.5") into millicores.
func parseMilli(s string) (int64, error) {
	if v, ok := strings.CutSuffix(s, "m"); ok {
		return strconv.ParseInt(v, 10, 64)
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(f * 1000), err
}
