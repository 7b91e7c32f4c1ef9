//go:build linux

package k8stest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/rtshim/rtshim/internal/harness"
)

// manifest is one Kubernetes object as generic JSON.
type manifest = map[string]any

// loadManifests decodes every YAML document of path.
func loadManifests(t testing.TB, path string) []manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []manifest
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
}

// contribPods are the Pods of contrib/kubernetes/*.yaml, by name.
func contribPods(t testing.TB) map[string]manifest {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(contribKubernetes, "*.yaml"))
	pods := map[string]manifest{}
	for _, f := range files {
		for _, m := range loadManifests(t, f) {
			if m["kind"] == "Pod" {
				pods[field[string](m, "metadata", "name")] = m
			}
		}
	}
	return pods
}

// field is the value at path in m, or T's zero value.
func field[T any](m manifest, path ...string) T {
	var v any = m
	for _, k := range path {
		mm, _ := v.(manifest)
		v = mm[k]
	}
	t, _ := v.(T)
	return t
}

// toJSON marshals a manifest for kubectl apply -f -.
func toJSON(t testing.TB, m manifest) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cloneManifest deep-copies m.
func cloneManifest(t testing.TB, m manifest) manifest {
	t.Helper()
	var c manifest
	if err := json.Unmarshal([]byte(toJSON(t, m)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// rtPod is a pod manifest: RuntimeClass class ("" for the default runtime), annotations, and
// the named containers, each printing its /proc/self/sched and sleeping, with CPU request and
// limit cpuRequest and cpuLimit ("" for none; memory 16Mi where set).
func rtPod(name, class string, annotations map[string]string, cpuRequest, cpuLimit string, containers ...string) manifest {
	var ctrs []any
	for _, c := range containers {
		res := manifest{}
		if cpuRequest != "" {
			res["requests"] = manifest{"cpu": cpuRequest, "memory": "16Mi"}
		}
		if cpuLimit != "" {
			res["limits"] = manifest{"cpu": cpuLimit, "memory": "16Mi"}
		}
		ctrs = append(ctrs, manifest{
			"name": c, "image": appImage, "imagePullPolicy": "Never",
			"command":   []any{"sh", "-c", "grep -E '^(policy|prio) ' /proc/self/sched; exec sleep 3600"},
			"resources": res,
		})
	}
	ann := manifest{}
	for k, v := range annotations {
		ann[k] = v
	}
	spec := manifest{"containers": ctrs, "terminationGracePeriodSeconds": 1}
	if class != "" {
		spec["runtimeClassName"] = class
	}
	return manifest{"apiVersion": "v1", "kind": "Pod", "metadata": manifest{"name": name, "annotations": ann}, "spec": spec}
}

// contribBudget is contrib/rtshim.toml's defaults.rt_runtime_us: what a container gets.
func contribBudget(t testing.TB) int64 {
	t.Helper()
	var cfg struct {
		Defaults struct {
			RTRuntimeUS int64 `toml:"rt_runtime_us"`
		} `toml:"defaults"`
	}
	if _, err := toml.DecodeFile(contribRtshim, &cfg); err != nil || cfg.Defaults.RTRuntimeUS <= 0 {
		t.Fatalf("%s: defaults.rt_runtime_us: %d, %v", contribRtshim, cfg.Defaults.RTRuntimeUS, err)
	}
	return cfg.Defaults.RTRuntimeUS
}

// contribLimit is one of contrib/rtshim.toml's [limits], in µs.
func contribLimit(t testing.TB, key string) int64 {
	t.Helper()
	var cfg struct {
		Limits map[string]any `toml:"limits"`
	}
	if _, err := toml.DecodeFile(contribRtshim, &cfg); err != nil {
		t.Fatal(err)
	}
	v, ok := cfg.Limits[key].(int64)
	if !ok || v <= 0 {
		t.Fatalf("%s: limits.%s = %v", contribRtshim, key, cfg.Limits[key])
	}
	return v
}

// rtRequest is what rtshim.io/ annotations ask for one container: policy (1 SCHED_FIFO, 2
// SCHED_RR) and priority (default 50); an override `<key>.container.<name>` wins.
func rtRequest(t testing.TB, annotations map[string]any, container string) (policy, priority uint32) {
	t.Helper()
	get := func(key string) string {
		if v, ok := annotations[key+".container."+container].(string); ok {
			return v
		}
		v, _ := annotations[key].(string)
		return v
	}
	switch p := strings.TrimPrefix(strings.ToUpper(get("rtshim.io/policy")), "SCHED_"); p {
	case "FIFO":
		policy = 1
	case "RR":
		policy = 2
	default:
		t.Fatalf("container %s: policy %q; the tests expect FIFO or RR", container, p)
	}
	priority = 50
	if v := get("rtshim.io/priority"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("container %s: priority %q: %v", container, v, err)
		}
		priority = uint32(n)
	}
	return policy, priority
}

// procSched matches the lines the test containers print from /proc/self/sched.
var procSched = regexp.MustCompile(`(?m)^(policy|prio)\s+:\s+(\d+)$`)

// firstInstruction checks, from container name's log, the policy and priority its program
// started with: /proc/self/sched's prio is 99 - the RT priority (120 + nice for OTHER).
func (c *cluster) firstInstruction(t testing.TB, podName, name string, policy, priority uint32) {
	t.Helper()
	var got map[string]string
	err := waitFor("the log of "+podName+"/"+name, 20*time.Second, nil, func() error {
		out, err := c.kubectl("logs", podName, "-c", name)
		if err != nil {
			return err
		}
		got = map[string]string{}
		for _, m := range procSched.FindAllStringSubmatch(out, -1) {
			got[m[1]] = m[2]
		}
		if len(got) < 2 {
			return fmt.Errorf("no policy and prio lines in %q", out)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
		return
	}
	wantPrio := 120
	if policy != 0 {
		wantPrio = 99 - int(priority)
	}
	if got["policy"] != strconv.Itoa(int(policy)) || got["prio"] != strconv.Itoa(wantPrio) {
		t.Errorf("%s/%s started with policy %s prio %s (its log), want policy %d prio %d", podName, name, got["policy"], got["prio"], policy, wantPrio)
	}
}

// checkRT checks container name of pod p from the host: its init runs policy/priority, its
// cgroup holds budget, and its quota is lifted (-1) when lifted, else want quota.
func checkRT(t testing.TB, p *pod, name string, policy, priority uint32, budget, quota int64) {
	t.Helper()
	pid := p.initPID(t, name)
	if gp, gprio, err := schedOf(pid); err != nil || gp != policy || gprio != priority {
		t.Errorf("%s/%s (pid %d): policy %d priority %d (%v), want %d %d", p.Metadata.Name, name, pid, gp, gprio, err, policy, priority)
	}
	dir := cpuCgroup(p.podCgroup() + "/" + p.containerID(name))
	for file, want := range map[string]int64{"cpu.rt_runtime_us": budget, "cpu.cfs_quota_us": quota} {
		if got := mustReadInt(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s/%s: %s = %d, want %d", p.Metadata.Name, name, file, got, want)
		}
	}
}

// checkCgroup checks files of cgroup rel in the cpu hierarchy.
func checkCgroup(t testing.TB, what, rel string, want map[string]int64) {
	t.Helper()
	for file, v := range want {
		if got := mustReadInt(t, filepath.Join(cpuCgroup(rel), file)); got != v {
			t.Errorf("%s (%s): %s = %d, want %d", what, rel, file, got, v)
		}
	}
}

// milliQuota is the CFS quota the kubelet gives a CPU limit in millicores (period 100 ms).
func milliQuota(milli int64) int64 { return max(milli*100, 1000) }

// waitCgroupsGone waits until the pods' cgroups are gone from every hierarchy: the kubelet
// removes them in its housekeeping, after the pods are deleted.
func waitCgroupsGone(t testing.TB, pods ...*pod) {
	t.Helper()
	err := waitFor("the deleted pods' cgroups to go", 60*time.Second, nil, func() error {
		for _, p := range pods {
			dirs, err := harness.CgroupTree(p.podCgroup())
			if err != nil {
				return fmt.Errorf("%s: %w", p.Metadata.Name, err)
			}
			if len(dirs) > 0 {
				return fmt.Errorf("%s: cgroups left: %v", p.Metadata.Name, dirs)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// assertTreeRestored fails t when the cpu tree differs from before.
func assertTreeRestored(t testing.TB, before map[string]string) {
	t.Helper()
	var diff []string
	// The kubelet's own periodic writes to kubepods' QoS cgroups do not touch these files, so
	// any difference is a leak (or a grant that was not given back).
	err := waitFor("the cpu tree as before", 10*time.Second, nil, func() error {
		diff = harness.DiffCPUTree(before, snapshotCPUTree(t))
		if len(diff) > 0 {
			return errors.New(strings.Join(diff, "\n"))
		}
		return nil
	})
	if err != nil {
		t.Errorf("cpu cgroup tree not restored:\n%s", strings.Join(diff, "\n"))
	}
}

// claimsLeft lists the rtshim claims in the node's state dir.
func (n *node) claimsLeft() []string {
	ents, _ := os.ReadDir(filepath.Join(n.stateDir, "claims"))
	return names(ents)
}

// assertNoNewRecords fails t for rtshim records that were not there before (a scenario checks
// what it left, not what an earlier one did).
func (n *node) assertNoNewRecords(t testing.TB, before []string) {
	t.Helper()
	var added []string
	for _, r := range n.recordsLeft() {
		if !slices.Contains(before, r) {
			added = append(added, r)
		}
	}
	if len(added) > 0 {
		t.Errorf("rtshim records left: %v", added)
	}
}

// recordsLeft lists the rtshim claims and baselines (what a cgroup held before rtshim changed
// it) in the node's state dir: none once every RT container is gone.
func (n *node) recordsLeft() []string {
	var out []string
	for _, sub := range []string{"claims", "baselines"} {
		ents, _ := os.ReadDir(filepath.Join(n.stateDir, sub))
		for _, e := range ents {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// annotationsOf is a manifest's metadata.annotations.
func annotationsOf(m manifest) map[string]any {
	return maps.Clone(field[map[string]any](m, "metadata", "annotations"))
}
