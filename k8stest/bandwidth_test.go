//go:build linux

package k8stest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/harness"
)

// fifo is what the bandwidth scenario's RT pods ask: SCHED_FIFO at priority 20.
var fifo = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "20"}

// bandwidth is the state the bandwidth scenario's steps share: each step starts from what the
// one before left, as on a node that lives on.
type bandwidth struct {
	c          *cluster
	pluginPod  string // the agent's pod now
	allocEmpty int64  // the node's allocatable with no RT container anywhere
	tickUnits  int64  // the smallest allocation: one scheduler tick, in units
	// After fit: the running pods, their units and container IDs, and the pending one.
	units   map[string]int64
	ids     map[string]string
	uids    map[string]string
	pending string
	perPod  int64
}

// testBandwidth is issue 12's point 4: RT bandwidth as the Kubernetes resource
// rtshim.io/rt-bandwidth on the real node. The agent runs as a user applies it
// (contrib/kubernetes/install/device-plugin.yaml, from the installer's image); each step runs
// on what the one before left.
func testBandwidth(t *testing.T, c *cluster) {
	n := c.node
	before := snapshotCPUTree(t)
	records := n.recordsLeft()
	image, name := os.Getenv("RTSHIM_IMAGE"), os.Getenv("RTSHIM_IMAGE_NAME")
	if image == "" || name == "" {
		t.Fatal("RTSHIM_IMAGE and RTSHIM_IMAGE_NAME are not set: run the tier with `make test-k8s` (it runs `make image`)")
	}
	ds := loadManifests(t, devicePluginManifest)
	if len(ds) != 1 || ds[0]["kind"] != "DaemonSet" {
		t.Fatalf("%s: want one DaemonSet", devicePluginManifest)
	}
	if ctrs := field[[]any](ds[0], "spec", "template", "spec", "containers"); len(ctrs) != 1 || ctrs[0].(manifest)["image"] != name {
		t.Fatalf("%s: its image is not %s (make image's IMAGE_NAME)", devicePluginManifest, name)
	}
	if _, err := n.ctr("images", "import", image); err != nil {
		t.Fatal(err)
	}
	tick, _ := cgroupfix.TickUS("/proc", "/boot")
	if tick <= 0 {
		t.Fatal("this kernel's CONFIG_HZ is unknown (no /proc/config.gz, no /boot/config-*): the scenario needs the shim's smallest budget")
	}
	bw := &bandwidth{c: c, tickUnits: (tick + 999) / 1000}
	t.Cleanup(func() {
		c.deleteLabelled(t)
		n.removeOutside(t, "outside-bw", "outside-tick")
		n.setShimConfig(t, false)
		if _, err := c.kubectl("delete", "-f", devicePluginManifest, "--ignore-not-found", "--wait=true", "--timeout=60s"); err != nil {
			t.Error(err)
		}
	})

	start := time.Now()
	c.mustKubectl(t, "apply", "-f", devicePluginManifest)
	bw.pluginPod = c.devicePluginPod(t, "")
	registered := c.waitRegistered(t, bw.pluginPod, 0)
	err := waitFor("the node to list "+resourceBW, 60*time.Second, nil, func() error {
		a, ok, err := c.nodeResource()
		if err == nil && (!ok || a == 0) {
			err = fmt.Errorf("not listed (%v) or 0", ok)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("device plugin applied: registered with the kubelet %v later, the node lists %s %v after the apply",
		registered.Sub(start).Round(time.Millisecond), resourceBW, time.Since(start).Round(time.Millisecond))

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"allocatable", bw.testAllocatable},
		{"outside", bw.testOutside},
		{"fit", bw.testFit},
		{"agent-restart", bw.testAgentRestart},
		{"kubelet-restart", bw.testKubeletRestart},
		{"release", bw.testRelease},
		{"require-allocation", bw.testRequireAllocation},
		{"admission", bw.testAdmission},
	}
	for _, s := range steps {
		// A step starts from what the one before left: after a failure the rest cannot run
		// (nor can one step be run alone: see bandwidth.after).
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %s failed: the later steps build on it", s.name)
		}
	}

	c.mustKubectl(t, "delete", "-f", devicePluginManifest, "--wait=true", "--timeout=60s")
	c.deleteLabelled(t)
	assertTreeRestored(t, before)
	n.assertNoNewRecords(t, records)
}

// after fails t unless the step the caller builds on has run: `go test -run` can select one
// step alone, which would then test nothing of what it says.
func (bw *bandwidth) after(t *testing.T, step string, done bool) {
	t.Helper()
	if !done {
		t.Fatalf("this step builds on the step %s, which did not run: run TestK8s/bandwidth whole", step)
	}
}

// testAllocatable: on a node with no RT container, the node's allocatable (kubectl get node)
// is the shim's own admission figure: rtshim status's, cgroupfix.PodBandwidth's, and the
// kernel's rule worked out from the cgroup files (the children's runtime/period ratios, in the
// kernel's 20-bit fixed point, fit in the root's).
func (bw *bandwidth) testAllocatable(t *testing.T) {
	c, n := bw.c, bw.c.node
	if dirs, err := harness.CgroupTree(kubepods); err == nil {
		for _, d := range dirs {
			if v, err := readInt(filepath.Join(d, "cpu.rt_runtime_us")); err == nil && v != 0 {
				t.Fatalf("%s holds %d µs before any RT pod", d, v)
			}
		}
	}
	kernel := kernelPodUnits(t)
	m := &cgroupfix.Manager{CPU: cgroupfix.DirFS{Root: cpuCgroup("/")}, State: cgroupfix.State{Dir: n.stateDir}}
	b, err := m.PodBandwidth(kubepods, 1000000)
	if err != nil {
		t.Fatal(err)
	}
	arith := min((b.Allocated+b.Free)/1000, 1000)
	st := n.rtshimStatus(t)
	// kubectl, as a user reads it; the kubelet posts it within its status period.
	var capacity, alloc int64
	err = waitFor("kubectl get node: "+resourceBW+" allocatable "+strconv.FormatInt(kernel, 10), 30*time.Second, nil, func() error {
		var ok bool
		var err error
		capacity, alloc, ok, err = parseNodeResource([]byte(c.mustKubectl(t, "get", "node", nodeName, "-o", "json")))
		if err == nil && (!ok || alloc != kernel) {
			err = fmt.Errorf("allocatable %d", alloc)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
	t.Logf("empty node: allocatable %d (kubectl), rtshim status %d (free %d µs, allocated %d µs), cgroupfix %d, kernel rule %d; capacity %d",
		alloc, st.Units, st.FreeUS, st.AllocatedUS, arith, kernel, capacity)
	if st.Units != kernel || arith != kernel || st.AllocatedUS != 0 {
		t.Errorf("the figures disagree: rtshim status %d (allocated %d µs), cgroupfix %d, kernel rule %d", st.Units, st.AllocatedUS, arith, kernel)
	}
	if capacity != 1000 {
		t.Errorf("capacity %d, want 1000 devices (a full second, what the node could ever have)", capacity)
	}
	bw.allocEmpty = alloc
}

// kernelPodUnits is what a new pod's container could get on a node with no RT pod, by the
// kernel's rule (sched-rt-group.rst; to_ratio's 20-bit fixed point): the largest runtime per
// second whose ratio fits, with the other top-level cgroups' ratios, in the root's; in units.
func kernelPodUnits(t testing.TB) int64 {
	t.Helper()
	ratio := func(dir string) int64 {
		return mustReadInt(t, filepath.Join(dir, "cpu.rt_runtime_us")) << 20 / mustReadInt(t, filepath.Join(dir, "cpu.rt_period_us"))
	}
	free := ratio(cpuCgroup("/"))
	ents, err := os.ReadDir(cpuCgroup("/"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() != strings.TrimPrefix(kubepods, "/") {
			free -= ratio(cpuCgroup("/" + e.Name()))
		}
	}
	// The largest x with x<<20/1000000 <= free.
	x := ((free+1)*1000000+(1<<20)-1)>>20 - 1
	return min(max(x, 0)/1000, 1000)
}

// testOutside: an RT container started outside Kubernetes (ctr, in its own containerd
// namespace, through rtshim: real budget the kernel enforces, outside kubepods) lowers the
// node's allocatable by its budget; removing it gives it back. The delays from the change in
// the cgroup tree to the agent's new figure and to the node's new allocatable are measured
// over a few rounds, each change at a random moment: the kubelet posts its node's status
// every nodeStatusUpdateFrequency (10 s by default), which a change must not be in step with.
func (bw *bandwidth) testOutside(t *testing.T) {
	c, n := bw.c, bw.c.node
	bw.after(t, "allocatable", bw.allocEmpty > 0)
	const id, budget, rounds = "outside-bw", 100000, 2
	a0, a1 := bw.allocEmpty, bw.allocEmpty-budget/1000
	file := cpuCgroup("/"+outsideNamespace+"/"+id) + "/cpu.rt_runtime_us"
	t.Cleanup(func() { n.removeOutside(t, id) })
	var agent, node []time.Duration
	measure := func(from time.Time, want int64) {
		t.Helper()
		at := c.waitAllocatable(t, want, 60*time.Second)
		seen := pluginSaw(c.pluginLog(t, bw.pluginPod), want, from)
		if seen.IsZero() {
			t.Errorf("the agent's log does not show the figure %d after the change", want)
		}
		agent, node = append(agent, seen.Sub(from)), append(node, at.Sub(from))
		t.Logf("allocatable %d: the agent saw it after %v, the node's allocatable after %v", want,
			seen.Sub(from).Round(time.Millisecond), at.Sub(from).Round(time.Millisecond))
	}
	for i := range rounds {
		time.Sleep(rand.N(10 * time.Second))
		granted := watchFile(file, strconv.Itoa(budget))
		if err := n.runOutside(id, budget); err != nil {
			t.Fatal(err)
		}
		t0 := <-granted
		if i == 0 {
			pids := harness.CgroupProcs(filepath.Dir(file))
			if len(pids) == 0 {
				t.Fatal("the outside container has no process")
			}
			if policy, prio, err := schedOf(pids[0]); err != nil || policy != 1 || prio != 20 {
				t.Errorf("the outside container runs policy %d priority %d (%v), want SCHED_FIFO 20", policy, prio, err)
			}
		}
		measure(t0, a1)
		if st := n.rtshimStatus(t); st.Units != a1 {
			t.Errorf("rtshim status: %d units allocatable, want %d", st.Units, a1)
		}
		time.Sleep(rand.N(10 * time.Second))
		gone := watchFile(file, "")
		n.removeOutside(t, id)
		measure(<-gone, a0)
	}
	t.Logf("outside RT container of %d µs/s, added and removed %d times: the agent's figure followed after %v, the node's allocatable after %v",
		budget, rounds, roundAll(agent), roundAll(node))
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// pluginSaw is when the agent's log (with --timestamps) first says the node's figure changed
// to units after from (zero if it does not).
func pluginSaw(log string, units int64, from time.Time) time.Time {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "node bandwidth changed") || !slices.Contains(strings.Fields(line), "units="+strconv.FormatInt(units, 10)) {
			continue
		}
		if ts := logTimes(line, "node bandwidth changed"); len(ts) == 1 && !ts[0].Before(from.Add(-time.Second)) {
			return ts[0]
		}
	}
	return time.Time{}
}

// watchFile polls path every 2 ms and sends when it first holds want ("": when it is gone).
func watchFile(path, want string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			b, err := os.ReadFile(path)
			if want == "" && err != nil || want != "" && err == nil && strings.TrimSpace(string(b)) == want {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		ch <- time.Now()
	}()
	return ch
}

// sampler records every value of the node's allocatable while it runs.
type sampler struct {
	stop chan struct{}
	done sync.WaitGroup
	seen []int64
}

func (c *cluster) sampleAllocatable() *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		for {
			if a, ok, err := c.nodeResource(); err == nil && ok && !slices.Contains(s.seen, a) {
				s.seen = append(s.seen, a)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return s
}

// values stops the sampler and returns what it saw, in order of first sight.
func (s *sampler) values() []int64 {
	close(s.stop)
	s.done.Wait()
	return s.seen
}
