//go:build linux

package k8stest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// testResize is issue point 3's in-place resize: an RT pod's CPU limit up and down with
// `kubectl patch --subresource resize`. The kubelet writes the pod cgroup's quota itself (on
// an increase before the containers, on a decrease after them) and asks the runtime only to
// update the containers: the shim must keep both quotas lifted, within a second of the resize
// completing. A control pod on the default runtime gets the new quotas.
func testResize(t *testing.T, c *cluster) {
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	budget := contribBudget(t)
	ann := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "30"}
	c.apply(t, toJSON(t, rtPod("rt-resize", "rt", ann, "200m", "200m", "app")))
	c.apply(t, toJSON(t, rtPod("plain-resize", "", ann, "200m", "200m", "app")))
	t.Cleanup(func() { c.deletePods(t, "rt-resize", "plain-resize") })
	rt := c.waitRunning(t, "rt-resize")
	plain := c.waitRunning(t, "plain-resize")
	checkRT(t, rt, "app", 1, 30, budget, -1)
	checkRT(t, plain, "app", 0, 0, 0, milliQuota(200))

	for _, step := range []struct {
		name  string
		milli int64
	}{{"up", 400}, {"down", 100}} {
		t.Run(step.name, func(t *testing.T) {
			cpu := fmt.Sprintf("%dm", step.milli)
			patch := fmt.Sprintf(`{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":%q},"limits":{"cpu":%q}}}]}}`, cpu, cpu)
			for _, name := range []string{"rt-resize", "plain-resize"} {
				c.mustKubectl(t, "patch", "pod", name, "--subresource", "resize", "-p", patch)
			}
			for _, name := range []string{"rt-resize", "plain-resize"} {
				c.waitResized(t, name, cpu)
			}
			// The control: the kubelet's quotas, container and pod.
			checkCgroup(t, "plain-resize container", plain.podCgroup()+"/"+plain.containerID("app"), map[string]int64{"cpu.cfs_quota_us": milliQuota(step.milli)})
			checkCgroup(t, "plain-resize pod", plain.podCgroup(), map[string]int64{"cpu.cfs_quota_us": milliQuota(step.milli)})

			// The RT pod: both quotas lifted within a second of the resize completing, the
			// policy and the budget unchanged.
			files := map[string]string{
				"container": filepath.Join(cpuCgroup(rt.podCgroup()+"/"+rt.containerID("app")), "cpu.cfs_quota_us"),
				"pod":       filepath.Join(cpuCgroup(rt.podCgroup()), "cpu.cfs_quota_us"),
			}
			for what, file := range files {
				var got int64
				err := waitFor("rt-resize "+what+" quota lifted", time.Second, nil, func() (err error) {
					if got, err = readInt(file); err == nil && got != -1 {
						err = fmt.Errorf("%s = %d", file, got)
					}
					return err
				})
				if err != nil {
					t.Errorf("after resize %s to %s: %s cgroup's CFS quota is %d, not lifted (-1), a second after the kubelet finished: %v", step.name, cpu, what, got, err)
				}
			}
			checkRT(t, rt, "app", 1, 30, budget, mustReadInt(t, files["container"]))
		})
	}
	c.deletePods(t, "rt-resize", "plain-resize")
	waitCgroupsGone(t, rt, plain)
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}

// waitResized waits until pod name's container app reports limit cpu (the kubelet has
// actuated the resize) and no resize is pending or in progress.
func (c *cluster) waitResized(t testing.TB, name, cpu string) {
	t.Helper()
	err := waitFor("pod "+name+" resized to "+cpu, 60*time.Second, nil, func() error {
		p, err := c.getPod(name)
		if err != nil {
			return err
		}
		for _, cond := range p.Status.Conditions {
			if (cond.Type == "PodResizePending" || cond.Type == "PodResizeInProgress") && cond.Status == "True" {
				return fmt.Errorf("%s: %s %s", cond.Type, cond.Reason, cond.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != "app" {
				continue
			}
			if cs.Resources == nil || cs.Resources.Limits["cpu"] != cpu {
				return fmt.Errorf("container app: resources %+v", cs.Resources)
			}
			return nil
		}
		return fmt.Errorf("no status of container app")
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.describePod(name))
	}
}
