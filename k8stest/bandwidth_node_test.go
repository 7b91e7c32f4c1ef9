//go:build linux

package k8stest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What the bandwidth scenario runs and reads: the resource, the agent's DaemonSet as a user
// applies it, and the containerd namespace of the containers it runs outside Kubernetes.
const (
	resourceBW            = "rtshim.io/rt-bandwidth"
	devicePluginManifest  = contribKubernetes + "install/device-plugin.yaml"
	devicePluginSelector  = "app.kubernetes.io/name=rtshim-device-plugin"
	outsideNamespace      = "rtshim-k8s-outside"
	kubeletCheckpoint     = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
	pluginRegisteredLog   = "device plugin registered with the kubelet"
	bandwidthLabel        = "rtshim-test=bandwidth"
	bandwidthLabelKey     = "rtshim-test"
	bandwidthLabelValue   = "bandwidth"
	requireAllocationLine = "require_allocation = false\n"
)

// nodeResource is the node's allocatable of resourceBW, read from the API server (what the
// scheduler sees); ok is false while the node lists none.
func (c *cluster) nodeResource() (allocatable int64, ok bool, err error) {
	if c.api == nil {
		if c.api, err = c.httpClient(); err != nil {
			return 0, false, err
		}
	}
	resp, err := c.api.Get(c.server + "/api/v1/nodes/" + nodeName)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, fmt.Errorf("GET node %s: %w", nodeName, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET node %s: %s: %s", nodeName, resp.Status, b)
	}
	_, allocatable, ok, err = parseNodeResource(b)
	return allocatable, ok, err
}

// parseNodeResource reads capacity and allocatable of resourceBW from a v1 Node in JSON.
func parseNodeResource(b []byte) (capacity, allocatable int64, ok bool, err error) {
	var nd struct {
		Status struct {
			Capacity    map[string]string `json:"capacity"`
			Allocatable map[string]string `json:"allocatable"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &nd); err != nil {
		return 0, 0, false, err
	}
	cs, ok1 := nd.Status.Capacity[resourceBW]
	as, ok2 := nd.Status.Allocatable[resourceBW]
	if !ok1 || !ok2 {
		return 0, 0, false, nil
	}
	if capacity, err = parseCount(cs); err == nil {
		allocatable, err = parseCount(as)
	}
	return capacity, allocatable, true, err
}

// parseCount parses a count as the API server writes it: a quantity in canonical decimal form,
// an integer with an SI suffix ("950", "1k").
func parseCount(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"k": 1e3, "M": 1e6, "G": 1e9} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	return v * mult, nil
}

// waitAllocatable polls the node every 50 ms until its allocatable of resource is want, and
// returns when it first saw it.
func (c *cluster) waitAllocatable(t testing.TB, want int64, timeout time.Duration) time.Time {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for {
		a, ok, err := c.nodeResource()
		now := time.Now()
		if err == nil && ok && a == want {
			return now
		}
		last = fmt.Sprintf("allocatable %d (listed %v, %v)", a, ok, err)
		if now.After(deadline) {
			t.Fatalf("node %s: %s allocatable not %d within %v: %s", nodeName, resourceBW, want, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusBandwidth is `rtshim status --json`'s pod_rt_bandwidth.
type statusBandwidth struct {
	Kubepods    string `json:"kubepods"`
	FreeUS      int64  `json:"free_us"`
	AllocatedUS int64  `json:"allocated_us"`
	Units       int64  `json:"allocatable_units"`
}

// rtshimStatus runs `rtshim status --json` on the node, as an operator does there (in its
// mount namespace, with its rtshim config), and returns the node's pod RT bandwidth.
func (n *node) rtshimStatus(t testing.TB) statusBandwidth {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := n.inNS(filepath.Join(binDir, "rtshim"), "status", "--json", "--config", nodeShimConfig)
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		t.Fatalf("rtshim status --json: %v", err)
	}
	var r struct {
		Pods *statusBandwidth `json:"pod_rt_bandwidth"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Pods == nil {
		t.Fatalf("rtshim status --json: no pod_rt_bandwidth (%v): %s", err, out)
	}
	return *r.Pods
}

// deviceEntry is one container's devices in the kubelet's device manager checkpoint.
type deviceEntry struct {
	PodUID, Container string
	Devices           []string
}

// checkpointEntries reads the kubelet's device manager checkpoint on the node: which devices of
// resourceBW each container holds, sorted. It is what the kubelet keeps across restarts of
// itself and of the plugin.
func (n *node) checkpointEntries(t testing.TB) []deviceEntry {
	t.Helper()
	b, err := os.ReadFile(n.root() + kubeletCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	var cp struct {
		Data struct {
			PodDeviceEntries []struct {
				PodUID, ContainerName, ResourceName string
				DeviceIDs                           map[string][]string
			}
		}
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("%s: %v", kubeletCheckpoint, err)
	}
	var out []deviceEntry
	for _, e := range cp.Data.PodDeviceEntries {
		if e.ResourceName != resourceBW {
			continue
		}
		var ids []string
		for _, numa := range e.DeviceIDs {
			ids = append(ids, numa...)
		}
		slices.Sort(ids)
		out = append(out, deviceEntry{e.PodUID, e.ContainerName, ids})
	}
	slices.SortFunc(out, func(a, b deviceEntry) int { return strings.Compare(a.PodUID+a.Container, b.PodUID+b.Container) })
	return out
}

// checkDevices checks that the checkpoint gives each pod of want (uid → units) exactly its
// units, no other pod any, and no device to two containers.
func checkDevices(t testing.TB, entries []deviceEntry, want map[string]int64) {
	t.Helper()
	seen := map[string]string{}
	got := map[string]int64{}
	for _, e := range entries {
		got[e.PodUID] += int64(len(e.Devices))
		for _, id := range e.Devices {
			if other, ok := seen[id]; ok {
				t.Errorf("device %s of %s is held by pod %s and pod %s", id, resourceBW, other, e.PodUID)
			}
			seen[id] = e.PodUID
		}
	}
	for uid, units := range want {
		if got[uid] != units {
			t.Errorf("kubelet checkpoint: pod %s holds %d devices of %s, want %d", uid, got[uid], resourceBW, units)
		}
	}
	for uid, units := range got {
		if _, ok := want[uid]; !ok {
			t.Errorf("kubelet checkpoint: pod %s, not one of the running pods, holds %d devices of %s", uid, units, resourceBW)
		}
	}
}

// setShimConfig writes the node's rtshim config: contrib/rtshim.toml, with require_allocation
// set as asked. The shims read it at every container's create. It is written in place (the
// file's inode is what the node's containers and mounts see).
func (n *node) setShimConfig(t testing.TB, requireAllocation bool) {
	t.Helper()
	b, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	if strings.Count(body, requireAllocationLine) != 1 {
		t.Fatalf("%s: no single %q line", contribRtshim, strings.TrimSpace(requireAllocationLine))
	}
	if requireAllocation {
		body = strings.Replace(body, requireAllocationLine, "require_allocation = true\n", 1)
	}
	if err := os.WriteFile(n.root()+nodeShimConfig, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bwPod is an RT pod on RuntimeClass rt asking units of resourceBW for each container
// (none when units is 0), labelled for the bandwidth scenario.
func bwPod(name string, units int64, annotations map[string]string, containers ...string) manifest {
	m := rtPod(name, "rt", annotations, "", "", containers...)
	m["metadata"].(manifest)["labels"] = manifest{bandwidthLabelKey: bandwidthLabelValue}
	if units > 0 {
		for _, ctr := range m["spec"].(manifest)["containers"].([]any) {
			ctr.(manifest)["resources"] = manifest{"limits": manifest{resourceBW: strconv.FormatInt(units, 10)}}
		}
	}
	return m
}

// devicePluginPod is the agent's running pod (its name), once there is exactly one.
func (c *cluster) devicePluginPod(t testing.TB, not string) string {
	t.Helper()
	var name string
	err := waitFor("the device plugin's pod running", 90*time.Second, nil, func() error {
		out, err := c.kubectl("-n", "kube-system", "get", "pods", "-l", devicePluginSelector, "-o", "json")
		if err != nil {
			return err
		}
		var list struct{ Items []pod }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d pods", len(list.Items))
		}
		p := list.Items[0]
		if p.Metadata.Name == not {
			return fmt.Errorf("still the old pod %s", not)
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("pod %s: %+v", p.Metadata.Name, p.Status.ContainerStatuses)
		}
		name = p.Metadata.Name
		return nil
	})
	if err != nil {
		out, _ := c.kubectl("-n", "kube-system", "describe", "pods", "-l", devicePluginSelector)
		t.Fatalf("%v\n%s", err, out)
	}
	return name
}

// pluginLog is the agent pod's log, each line prefixed with its time (kubectl logs
// --timestamps).
func (c *cluster) pluginLog(t testing.TB, podName string) string {
	t.Helper()
	return c.mustKubectl(t, "-n", "kube-system", "logs", "--timestamps", podName)
}

// logTimes are the times of the lines of a --timestamps log that contain s.
func logTimes(log, s string) []time.Time {
	var out []time.Time
	for line := range strings.Lines(log) {
		if !strings.Contains(line, s) {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, tm)
		}
	}
	return out
}

// waitRegistered waits until the agent pod's log shows more than n registrations with the
// kubelet, and returns the time of the last one.
func (c *cluster) waitRegistered(t testing.TB, podName string, n int) time.Time {
	t.Helper()
	var at time.Time
	err := waitFor("the device plugin registering with the kubelet", 60*time.Second, nil, func() error {
		out, err := c.kubectl("-n", "kube-system", "logs", "--timestamps", podName)
		if err != nil {
			return err
		}
		times := logTimes(out, pluginRegisteredLog)
		if len(times) <= n {
			return fmt.Errorf("%d registrations in its log:\n%s", len(times), out)
		}
		at = times[len(times)-1]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}
