//go:build linux

package k8stest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testFit: pods asking rtshim.io/rt-bandwidth that together fill the node exactly (N of K
// units and one of the rest) all run, each container's cgroup holding exactly its units ×
// 1000 µs; the next pod of K stays Pending with `Insufficient rtshim.io/rt-bandwidth` in its
// FailedScheduling event, never reaching the node; no container ever fails. The boundary is
// the shim's own: with the node full, an RT container outside Kubernetes asking one scheduler
// tick is refused for budget.
func (bw *bandwidth) testFit(t *testing.T) {
	c, n := bw.c, bw.c.node
	bw.after(t, "allocatable", bw.allocEmpty > 0)
	a := bw.allocEmpty
	const perPod = 200
	fit := a / perPod
	if fit < 2 {
		t.Fatalf("the node allocates %d units: too few for pods of %d", a, perPod)
	}
	bw.perPod = perPod
	bw.units = map[string]int64{}
	var items []any
	for i := range fit {
		bw.units[fmt.Sprintf("bw-fit-%d", i)] = perPod
	}
	if rest := a - fit*perPod; rest >= bw.tickUnits {
		bw.units["bw-rest"] = rest
	} else {
		t.Logf("the rest, %d units, is less than one tick (%d units): no pod for it", rest, bw.tickUnits)
	}
	for _, name := range slices.Sorted(maps.Keys(bw.units)) {
		items = append(items, bwPod(name, bw.units[name], fifo, "app"))
	}
	start := time.Now()
	c.apply(t, toJSON(t, manifest{"apiVersion": "v1", "kind": "List", "items": items}))
	var total int64
	for name, units := range bw.units {
		p := c.waitRunning(t, name)
		checkRT(t, p, "app", 1, 20, units*1000, -1)
		total += units
	}
	t.Logf("%d pods holding %d of the node's %d units all run, %v after the apply", len(bw.units), total, a, time.Since(start).Round(time.Millisecond))
	bw.remember(t)

	bw.pending = "bw-next"
	c.apply(t, toJSON(t, bwPod(bw.pending, perPod, fifo, "app")))
	msg := c.waitEvent(t, bw.pending, "FailedScheduling", "Insufficient "+resourceBW, 60*time.Second)
	t.Logf("the next pod of %d units: FailedScheduling: %s", perPod, msg)
	bw.checkState(t)

	// The node is full by the shim's own arithmetic: nothing is left for anyone, in or out of
	// Kubernetes.
	st := n.rtshimStatus(t)
	if st.AllocatedUS != a*1000 || st.FreeUS >= 1000 || st.Units != a {
		t.Errorf("rtshim status with the node full: %+v, want allocated %d µs, less than 1000 µs free, %d units", st, a*1000, a)
	}
	err := n.runOutside("outside-tick", bw.tickUnits*1000)
	t.Cleanup(func() { n.removeOutside(t, "outside-tick") })
	if err == nil {
		t.Errorf("with the node full, an outside RT container of one tick (%d µs) was created", bw.tickUnits*1000)
	} else if why := n.refusal("outside-tick"); !strings.Contains(why, "no RT budget for container outside-tick") {
		t.Errorf("with the node full, an outside RT container of one tick (%d µs) failed (%v), but not for budget: shim log %q", bw.tickUnits*1000, err, why)
	} else {
		t.Logf("with the node full, an outside RT container of one tick is refused: %s", why)
	}
	n.removeOutside(t, "outside-tick")
}

// refusal is the reason the shim logged (containerd's log, where an operator reads it) for
// refusing container id, or "".
func (n *node) refusal(id string) string {
	b, _ := os.ReadFile(n.containerd.log)
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, `msg="refused to create container"`) && strings.Contains(line, " id="+id+" ") {
			if _, after, ok := strings.Cut(line, ` error="`); ok {
				msg, _, _ := strings.Cut(after, `" id=`)
				return msg
			}
		}
	}
	return ""
}

// remember records the running pods' UIDs and container IDs.
func (bw *bandwidth) remember(t testing.TB) {
	t.Helper()
	bw.ids, bw.uids = map[string]string{}, map[string]string{}
	for name := range bw.units {
		p, err := bw.c.getPod(name)
		if err != nil {
			t.Fatal(err)
		}
		bw.ids[name], bw.uids[name] = p.containerID("app"), p.Metadata.UID
	}
}

// checkState checks the node against what the steps so far left: every running pod runs its
// first container still, with its policy and exactly its budget; kubepods holds their sum; the
// pending pod never reached the node; the node's allocatable, rtshim status and the kubelet's
// checkpoint agree with the running pods' allocations; no container of the scenario failed.
func (bw *bandwidth) checkState(t testing.TB) {
	t.Helper()
	c, n := bw.c, bw.c.node
	var total int64
	want := map[string]int64{}
	for name, units := range bw.units {
		p, err := c.getPod(name)
		if err != nil {
			t.Fatal(err)
		}
		if id := p.containerID("app"); id != bw.ids[name] || p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("%s: container %s (restarts %d), was %s", name, id, p.Status.ContainerStatuses[0].RestartCount, bw.ids[name])
		}
		checkRT(t, p, "app", 1, 20, units*1000, -1)
		total += units
		want[p.Metadata.UID] = units
	}
	checkCgroup(t, "kubepods", kubepods, map[string]int64{"cpu.rt_runtime_us": total * 1000})
	if bw.pending != "" {
		p, err := c.getPod(bw.pending)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != "Pending" || p.Spec.NodeName != "" {
			t.Errorf("%s: phase %s on node %q, want Pending and unscheduled", bw.pending, p.Status.Phase, p.Spec.NodeName)
		}
	}
	if a, ok, err := c.nodeResource(); err != nil || !ok || a != bw.allocEmpty {
		t.Errorf("node allocatable %d (%v %v), want %d: allocations count as allocatable, the rest as free", a, ok, err, bw.allocEmpty)
	}
	if st := n.rtshimStatus(t); st.AllocatedUS != total*1000 || st.Units != bw.allocEmpty {
		t.Errorf("rtshim status %+v, want %d µs allocated and %d units", st, total*1000, bw.allocEmpty)
	}
	checkDevices(t, n.checkpointEntries(t), want)
	c.noContainerErrors(t)
}

// testAgentRestart: the agent's pod deleted (the DaemonSet makes a new one), the new agent
// registers, and nothing about the allocations changes: the node's allocatable, the kubelet's
// device assignments, the running pods and their budgets, the pending pod.
func (bw *bandwidth) testAgentRestart(t *testing.T) {
	c, n := bw.c, bw.c.node
	bw.after(t, "fit", bw.pending != "")
	entries := n.checkpointEntries(t)
	s := c.sampleAllocatable()
	start := time.Now()
	c.mustKubectl(t, "-n", "kube-system", "delete", "pod", bw.pluginPod, "--wait=true", "--timeout=60s")
	old := bw.pluginPod
	bw.pluginPod = c.devicePluginPod(t, old)
	reg := c.waitRegistered(t, bw.pluginPod, 0)
	time.Sleep(3 * time.Second) // a refresh or two of the new agent
	seen := s.values()
	t.Logf("agent pod %s deleted: %s registered %v later; allocatable seen meanwhile: %v", old, bw.pluginPod,
		reg.Sub(start).Round(time.Millisecond), seen)
	// While no agent is connected the kubelet marks every device unhealthy: a node status
	// posted then says 0 (new pods wait); never anything but 0 or the node's figure.
	for _, v := range seen {
		if v != 0 && v != bw.allocEmpty {
			t.Errorf("allocatable %d during the agent's restart, want %d (or 0 while no agent is connected)", v, bw.allocEmpty)
		}
	}
	c.waitAllocatable(t, bw.allocEmpty, 30*time.Second)
	if got := n.checkpointEntries(t); !slices.EqualFunc(got, entries, entryEqual) {
		t.Errorf("the kubelet's device assignments changed across the agent's restart:\n%v\nwere\n%v", got, entries)
	}
	bw.checkState(t)
}

// testKubeletRestart: the kubelet restarted under the running and the pending pods. The
// restarted kubelet removes every plugin socket; the agent registers again; the allocations
// are the kubelet's checkpoint's, and stay as they were.
func (bw *bandwidth) testKubeletRestart(t *testing.T) {
	c, n := bw.c, bw.c.node
	bw.after(t, "fit", bw.pending != "")
	entries := n.checkpointEntries(t)
	registrations := len(logTimes(c.pluginLog(t, bw.pluginPod), pluginRegisteredLog))
	s := c.sampleAllocatable()
	start := time.Now()
	if err := n.restartKubelet(n.opts); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	reg := c.waitRegistered(t, bw.pluginPod, registrations)
	back := c.waitAllocatable(t, bw.allocEmpty, 60*time.Second)
	time.Sleep(5 * time.Second) // let the new kubelet sync every pod
	seen := s.values()
	t.Logf("kubelet restarted: node Ready after %v, the agent registered again after %v, allocatable %d again after %v; seen meanwhile: %v",
		ready.Round(time.Millisecond), reg.Sub(start).Round(time.Millisecond), bw.allocEmpty, back.Sub(start).Round(time.Millisecond), seen)
	for _, v := range seen {
		if v != 0 && v != bw.allocEmpty {
			t.Errorf("allocatable %d across the kubelet restart, want %d (or 0 until the agent registers again)", v, bw.allocEmpty)
		}
	}
	if got := n.checkpointEntries(t); !slices.EqualFunc(got, entries, entryEqual) {
		t.Errorf("the kubelet's device assignments changed across its restart:\n%v\nwere\n%v", got, entries)
	}
	bw.checkState(t)
}

func entryEqual(a, b deviceEntry) bool {
	return a.PodUID == b.PodUID && a.Container == b.Container && slices.Equal(a.Devices, b.Devices)
}

// testRelease: deleting one running pod lets the pending one start, with exactly its budget,
// on devices no other container holds.
func (bw *bandwidth) testRelease(t *testing.T) {
	c := bw.c
	bw.after(t, "fit", bw.pending != "")
	gone := "bw-fit-0"
	p, err := c.getPod(gone)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.deletePods(t, gone)
	deleted := time.Since(start)
	next := c.waitRunning(t, bw.pending)
	t.Logf("%s deleted (%v): %s running %v after the delete began", gone, deleted.Round(time.Millisecond), bw.pending, time.Since(start).Round(time.Millisecond))
	delete(bw.units, gone)
	bw.units[bw.pending] = bw.perPod
	bw.ids[bw.pending], bw.uids[bw.pending] = next.containerID("app"), next.Metadata.UID
	bw.pending = ""
	waitCgroupsGone(t, p)
	bw.checkState(t)
}

// testRequireAllocation: with limits.require_allocation in the node's rtshim config, an RT pod
// holding no allocation is refused with a message that names the resource to request; so is
// one whose pod annotation tries to forge an allocation (CRI passes pod annotations only as
// rtshim.io/*); one asking a budget above its allocation is refused with both numbers; one
// holding an allocation runs with it as its budget.
func (bw *bandwidth) testRequireAllocation(t *testing.T) {
	c, n := bw.c, bw.c.node
	c.deleteLabelled(t)
	bw.units, bw.ids, bw.uids = map[string]int64{}, map[string]string{}, map[string]string{}
	n.setShimConfig(t, true)
	t.Cleanup(func() { n.setShimConfig(t, false) })

	forged := map[string]string{"allocation.rtshim.io/rt-bandwidth": "300"}
	overask := map[string]string{"rtshim.io/rt-runtime-us": "100000"}
	for k, v := range fifo {
		forged[k], overask[k] = v, v
	}
	c.apply(t, toJSON(t, bwPod("bw-unallocated", 0, fifo, "app")))
	c.apply(t, toJSON(t, bwPod("bw-forged", 0, forged, "app")))
	c.apply(t, toJSON(t, bwPod("bw-overask", 50, overask, "app")))
	c.apply(t, toJSON(t, bwPod("bw-allocated", 100, fifo, "app")))

	need := "needs an allocation of " + resourceBW + " on this node (limits.require_allocation is true): add resources.limits {" + resourceBW + ": N}"
	for _, name := range []string{"bw-unallocated", "bw-forged"} {
		msg := c.waitEvent(t, name, "Failed", need, 60*time.Second)
		if !strings.Contains(msg, "(100 for 100000 µs per 1000000 µs)") {
			t.Errorf("%s: the refusal does not say how much to request for the default budget: %s", name, msg)
		}
		if d := c.describePod(name); !strings.Contains(strings.Join(strings.Fields(d), " "), resourceBW+": N}") {
			t.Errorf("kubectl describe pod %s does not show the refusal:\n%s", name, d)
		}
		t.Logf("%s: %s", name, msg)
	}
	msg := c.waitEvent(t, "bw-overask", "Failed", "asks 100000 µs per 1000000 µs, above the container's allocation of "+resourceBW+": 50 (50000 µs per 1000000 µs)", 60*time.Second)
	t.Logf("bw-overask: %s", msg)
	p := c.waitRunning(t, "bw-allocated")
	checkRT(t, p, "app", 1, 20, 100000, -1)
	c.deleteLabelled(t)
}

// testAdmission: an allocation the shim would refuse whatever the container asks (below one
// scheduler tick, above limits.max_rt_runtime_us) fails the pod at the kubelet's admission, with
// the shim's reason, instead of looping in CrashLoopBackOff; a pod whose two containers hold
// allocations runs each with its own as its budget.
func (bw *bandwidth) testAdmission(t *testing.T) {
	c, n := bw.c, bw.c.node
	tiny, huge := bw.tickUnits-1, contribLimit(t, "max_rt_runtime_us")/1000+1
	two := bwPod("bw-two", 100, fifo, "a", "b")
	two["spec"].(manifest)["containers"].([]any)[1].(manifest)["resources"] = manifest{"limits": manifest{resourceBW: "150"}}
	c.apply(t, toJSON(t, bwPod("bw-tiny", tiny, fifo, "app")))
	c.apply(t, toJSON(t, bwPod("bw-huge", huge, fifo, "app")))
	c.apply(t, toJSON(t, two))
	for name, why := range map[string]string{
		"bw-tiny": fmt.Sprintf("%s: %d is %d µs per 1000000 µs, below the smallest RT budget allowed here, %d µs", resourceBW, tiny, tiny*1000, bw.tickUnits*1000),
		"bw-huge": fmt.Sprintf("%s: %d is %d µs per 1000000 µs, above limits.max_rt_runtime_us", resourceBW, huge, huge*1000),
	} {
		var p *pod
		err := waitFor(name+" failed at admission", 60*time.Second, nil, func() (err error) {
			if p, err = c.getPod(name); err == nil && p.Status.Phase != "Failed" {
				err = fmt.Errorf("phase %s", p.Status.Phase)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Reason != "UnexpectedAdmissionError" || !strings.Contains(p.Status.Message, why) || len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].ContainerID != "" {
			t.Errorf("%s: %s: %s (containers %+v), want refused at admission: %s", name, p.Status.Reason, p.Status.Message, p.Status.ContainerStatuses, why)
		}
		t.Logf("%s (%s): %s", name, p.Status.Reason, p.Status.Message)
	}
	p := c.waitRunning(t, "bw-two")
	checkRT(t, p, "a", 1, 20, 100000, -1)
	checkRT(t, p, "b", 1, 20, 150000, -1)
	checkCgroup(t, "bw-two pod", p.podCgroup(), map[string]int64{"cpu.rt_runtime_us": 250000})
	checkDevices(t, n.checkpointEntries(t), map[string]int64{p.Metadata.UID: 250})
	c.deleteLabelled(t)
}

// waitEvent waits for an event of pod name with reason whose message contains s, and returns
// the message.
func (c *cluster) waitEvent(t testing.TB, name, reason, s string, timeout time.Duration) string {
	t.Helper()
	var msg string
	err := waitFor(fmt.Sprintf("a %s event of %s saying %q", reason, name, s), timeout, nil, func() error {
		evs, err := c.eventsOf(name)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Reason == reason && strings.Contains(e.Message, s) {
				msg = e.Message
				return nil
			}
		}
		return fmt.Errorf("events: %+v", evs)
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// labelled lists the bandwidth scenario's pods.
func (c *cluster) labelled(t testing.TB) []pod {
	t.Helper()
	var list struct{ Items []pod }
	if err := json.Unmarshal([]byte(c.mustKubectl(t, "get", "pods", "-l", bandwidthLabel, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// noContainerErrors fails t for any container of the scenario's pods that did not start
// first time: the scheduler, not the shim, must keep pods off a node without room.
func (c *cluster) noContainerErrors(t testing.TB) {
	t.Helper()
	for _, p := range c.labelled(t) {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount > 0 || cs.State.Waiting != nil && cs.State.Waiting.Reason != "ContainerCreating" {
				t.Errorf("%s/%s: restarts %d, waiting %+v", p.Metadata.Name, cs.Name, cs.RestartCount, cs.State.Waiting)
			}
		}
		evs, err := c.eventsOf(p.Metadata.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			// FailedScheduling is the scheduler keeping a pod off; MissingClusterDNS, that
			// the tier has no cluster DNS. Every other warning is a failure.
			if e.Type == "Warning" && e.Reason != "FailedScheduling" && e.Reason != "MissingClusterDNS" {
				t.Errorf("%s: event %s: %s", p.Metadata.Name, e.Reason, e.Message)
			}
		}
	}
}

// deleteLabelled deletes the bandwidth scenario's pods and waits until the kubelet removed
// their cgroups.
func (c *cluster) deleteLabelled(t testing.TB) {
	t.Helper()
	var pods []*pod
	for _, p := range c.labelled(t) {
		pods = append(pods, &p)
	}
	if _, err := c.kubectl("delete", "pod", "-l", bandwidthLabel, "--grace-period=1", "--wait=true", "--timeout=90s"); err != nil {
		t.Error(err)
	}
	waitCgroupsGone(t, pods...)
}

// runOutside runs RT container id through rtshim outside Kubernetes: ctr in its own
// namespace of the node's containerd, SCHED_FIFO 20 with budget µs per second, sleeping. Its
// cgroup is /<namespace>/<id>, beside kubepods. No stdio: ctr's FIFOs would be in the host's
// /run, which the node's shims do not see.
func (n *node) runOutside(id string, budget int64) error {
	_, err := n.ctrIn(outsideNamespace, "run", "-d", "--null-io", "--runtime", "io.containerd.rt.v2", "--rootfs", rootfsDir,
		"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/priority=20",
		"--annotation", "rtshim.io/rt-runtime-us="+strconv.FormatInt(budget, 10), id, "/bin/sleep", "3600")
	return err
}

// removeOutside removes outside containers and, once none is left, their namespace's cgroups.
func (n *node) removeOutside(t testing.TB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, _ = n.ctrIn(outsideNamespace, "tasks", "kill", "-s", "SIGKILL", id)
		err := waitFor("task "+id+" deleted", 20*time.Second, nil, func() error {
			_, err := n.ctrIn(outsideNamespace, "tasks", "delete", id)
			if err != nil && strings.Contains(err.Error(), "not found") {
				return nil
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
		if _, err := n.ctrIn(outsideNamespace, "containers", "delete", id); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Error(err)
		}
	}
	if out, err := n.ctrIn(outsideNamespace, "containers", "ls", "-q"); err == nil && strings.TrimSpace(out) == "" {
		for _, err := range removeCgroupTree("/" + outsideNamespace) {
			t.Error(err)
		}
	}
}
