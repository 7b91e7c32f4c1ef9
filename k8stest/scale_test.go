//go:build linux

package k8stest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testScale is issue point 3's scale: 20 RT pods created at once through the API server
// (alternately on RuntimeClass rt and rt-runc), each asking for a budget such that only some
// fit. Every pod that fits is admitted, the others are refused with the reason in their
// events, no cgroup holds more than its parent allows, retries of the refused pods change
// nothing, and deleting them all gives back a tree identical to before.
func testScale(t *testing.T, c *cluster) {
	const n, per = 20, 100000
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	root := mustReadInt(t, cpuCgroup("/")+"/cpu.rt_runtime_us")
	held := int64(0) // what cgroups outside kubepods hold
	tops, _ := filepath.Glob(cpuCgroup("/*/cpu.rt_runtime_us"))
	for _, f := range tops {
		if filepath.Base(filepath.Dir(f)) != "kubepods" {
			held += mustReadInt(t, f)
		}
	}
	fit := (root - held - mustReadInt(t, cpuCgroup(kubepods)+"/cpu.rt_runtime_us")) / per
	t.Logf("host: %d µs of RT runtime, %d held outside kubepods: %d of %d pods fit", root, held, fit, n)

	var items []any
	var names []string
	for i := range n {
		class := []string{"rt", "rt-runc"}[i%2]
		name := fmt.Sprintf("rt-scale-%02d", i)
		m := rtPod(name, class, map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "10", "rtshim.io/rt-runtime-us": fmt.Sprint(per)}, "", "", "app")
		m["metadata"].(manifest)["labels"] = manifest{"rtshim-test": "scale"}
		items = append(items, m)
		names = append(names, name)
	}
	t.Cleanup(func() { c.deletePods(t, names...) })
	start := time.Now()
	c.apply(t, toJSON(t, manifest{"apiVersion": "v1", "kind": "List", "items": items}))

	var running, refused []string
	err := waitFor("every pod running or refused", 3*time.Minute, nil, func() error {
		var err error
		running, refused, err = c.scaleState()
		if err != nil {
			return err
		}
		if len(running)+len(refused) < n {
			return fmt.Errorf("%d running, %d refused", len(running), len(refused))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods running, %d refused, %v after the apply", len(running), len(refused), time.Since(start).Round(time.Millisecond))
	check := func(when string) {
		t.Helper()
		if int64(len(running)) != fit || int64(len(refused)) != n-fit {
			t.Errorf("%s: %d running %v, %d refused; want %d running", when, len(running), running, len(refused), fit)
		}
		if errs := oversubscribed(kubepods, root-held); len(errs) > 0 {
			t.Errorf("%s: oversubscribed:\n%s", when, strings.Join(errs, "\n"))
		}
		if got := mustReadInt(t, cpuCgroup(kubepods)+"/cpu.rt_runtime_us"); got != int64(len(running))*per {
			t.Errorf("%s: kubepods holds %d µs, want %d for %d running pods", when, got, int64(len(running))*per, len(running))
		}
	}
	check("all settled")
	for _, name := range running {
		p, err := c.getPod(name)
		if err != nil {
			t.Fatal(err)
		}
		checkRT(t, p, "app", 1, 10, per, -1)
	}
	// The kubelet retries the refused pods (back-off 10 s, then 20 s): those retries must
	// change nothing.
	time.Sleep(12 * time.Second)
	if running, refused, err = c.scaleState(); err != nil {
		t.Fatal(err)
	}
	check("after the kubelet's retries")

	c.deletePods(t, names...)
	if err := waitFor("the scale pods' cgroups to go", 90*time.Second, nil, func() error {
		dirs, _ := filepath.Glob(cpuCgroup("/kubepods/besteffort/pod*"))
		if len(dirs) > 0 {
			return fmt.Errorf("%d pod cgroups left", len(dirs))
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}

// scaleState lists the scale pods whose container runs and those refused for budget (an
// event says so).
func (c *cluster) scaleState() (running, refused []string, err error) {
	out, err := c.kubectl("get", "pods", "-l", "rtshim-test=scale", "-o", "json")
	if err != nil {
		return nil, nil, err
	}
	var list struct{ Items []pod }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, nil, err
	}
	out, err = c.kubectl("get", "events", "-o", "json")
	if err != nil {
		return nil, nil, err
	}
	var events struct{ Items []event }
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		return nil, nil, err
	}
	noBudget := map[string]bool{}
	for _, e := range events.Items {
		if e.Reason == "Failed" && strings.Contains(e.Message, "no RT budget") && strings.Contains(e.Message, "cannot grant 100000 µs") {
			noBudget[e.InvolvedObject.Name] = true
		}
	}
	for _, p := range list.Items {
		switch {
		case len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil:
			running = append(running, p.Metadata.Name)
		case noBudget[p.Metadata.Name]:
			refused = append(refused, p.Metadata.Name)
		}
	}
	return running, refused, nil
}

// oversubscribed checks every cgroup at and under rel: its children's RT runtimes add up to at
// most its own, and its own is at most limit (for rel) or its parent's.
func oversubscribed(rel string, limit int64) []string {
	var errs []string
	var walk func(dir string, max int64)
	walk = func(dir string, max int64) {
		own, err := readInt(filepath.Join(dir, "cpu.rt_runtime_us"))
		if err != nil {
			return
		}
		if own > max {
			errs = append(errs, fmt.Sprintf("%s holds %d µs, more than the %d µs above it", dir, own, max))
		}
		ents, _ := os.ReadDir(dir)
		var sum int64
		for _, e := range ents {
			if e.IsDir() {
				v, _ := readInt(filepath.Join(dir, e.Name(), "cpu.rt_runtime_us"))
				sum += v
				walk(filepath.Join(dir, e.Name()), own)
			}
		}
		if sum > own {
			errs = append(errs, fmt.Sprintf("%s: children hold %d µs together, more than its %d µs", dir, sum, own))
		}
	}
	walk(cpuCgroup(rel), limit)
	return errs
}
