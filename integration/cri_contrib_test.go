//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// The files in contrib/ that TestCRI loads, so that they cannot rot.
const (
	contribContainerd   = "../contrib/containerd/config.toml"
	contribRtshim       = "../contrib/rtshim.toml"
	contribRuntimeClass = "../contrib/kubernetes/00-runtimeclass.yaml"
	contribPod          = "../contrib/kubernetes/pod.yaml"
)

// criRuntimeTable is where containerd 2.x's CRI plugin keeps its runtime handlers.
const criRuntimeTable = "io.containerd.cri.v1.runtime"

// k8sRuntimeClass is the part of a node.k8s.io/v1 RuntimeClass the test understands; any
// other field in the contrib file fails the test (it would go untested).
type k8sRuntimeClass struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Handler string `yaml:"handler"`
}

// k8sPod is the part of a v1 Pod the test plays the kubelet for.
type k8sPod struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string               `yaml:"name"`
		Annotations map[string]k8sString `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		RuntimeClassName string         `yaml:"runtimeClassName"`
		Containers       []k8sContainer `yaml:"containers"`
	} `yaml:"spec"`
}

// annotations are the pod's annotations.
func (p k8sPod) annotations() map[string]string {
	m := map[string]string{}
	for k, v := range p.Metadata.Annotations {
		m[k] = string(v)
	}
	return m
}

// k8sString is a YAML value that must be a string, as the API server requires of annotations
// (an unquoted `60` is refused there, so it is here too).
type k8sString string

func (s *k8sString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return fmt.Errorf("line %d: %s is not a string: quote it", n.Line, n.Value)
	}
	*s = k8sString(n.Value)
	return nil
}

type k8sContainer struct {
	Name      string   `yaml:"name"`
	Image     string   `yaml:"image"`
	Command   []string `yaml:"command"`
	Args      []string `yaml:"args"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// decodeYAMLStrict decodes every document of a YAML file into a new T, refusing unknown fields.
func decodeYAMLStrict[T any](t testing.TB, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var docs []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil && strings.Contains(err.Error(), "not found in type") {
			t.Fatalf("%s: %v: a field the test does not play the kubelet for would go untested", path, err)
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, v)
	}
}

// loadKubernetesContrib loads contrib/kubernetes: the RuntimeClasses and the example pod.
func loadKubernetesContrib(t testing.TB) ([]k8sRuntimeClass, k8sPod) {
	t.Helper()
	classes := decodeYAMLStrict[k8sRuntimeClass](t, contribRuntimeClass)
	for _, rc := range classes {
		if rc.APIVersion != "node.k8s.io/v1" || rc.Kind != "RuntimeClass" || rc.Metadata.Name == "" || rc.Handler == "" {
			t.Fatalf("%s: not a node.k8s.io/v1 RuntimeClass with a name and a handler: %+v", contribRuntimeClass, rc)
		}
	}
	pods := decodeYAMLStrict[k8sPod](t, contribPod)
	if len(pods) != 1 || pods[0].APIVersion != "v1" || pods[0].Kind != "Pod" {
		t.Fatalf("%s: want one v1 Pod, got %+v", contribPod, pods)
	}
	pod := pods[0]
	if !slices.ContainsFunc(classes, func(rc k8sRuntimeClass) bool { return rc.Metadata.Name == pod.Spec.RuntimeClassName }) {
		t.Fatalf("%s: runtimeClassName %q is none of %s's RuntimeClasses", contribPod, pod.Spec.RuntimeClassName, contribRuntimeClass)
	}
	if len(pod.Spec.Containers) == 0 {
		t.Fatalf("%s: no containers", contribPod)
	}
	return classes, pod
}

// criDaemonConfig loads contrib/containerd/config.toml and points it at the test's files: the
// rt runtime's options.ConfigPath at shimConfig and every runtime_path at the shim under test.
// It returns the config's body (without its version line: the generated config has one) and
// its CRI runtime handlers by name.
func criDaemonConfig(t testing.TB, shimConfig string) (string, map[string]criRuntime) {
	t.Helper()
	b, err := os.ReadFile(contribContainerd)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	shim := filepath.Join(env.BinDir, "containerd-shim-rt-v2")
	for name, rt := range parseCRIRuntimes(t, body) {
		for _, sub := range []struct{ key, old, new string }{
			{"options.ConfigPath", rt.ConfigPath, shimConfig},
			{"runtime_path", rt.Path, shim},
		} {
			if sub.old == "" {
				continue
			}
			// Replace the value where it is set: the file's comments may name it too.
			quoted := strconv.Quote(sub.old)
			if n := strings.Count(body, quoted); n != 1 {
				t.Fatalf("%s: runtime %s: %s %s appears %d times quoted; cannot point it at the test's file",
					contribContainerd, name, sub.key, quoted, n)
			}
			body = strings.Replace(body, quoted, strconv.Quote(sub.new), 1)
		}
	}
	lines := strings.SplitAfter(body, "\n")
	i := slices.Index(lines, "version = 3\n")
	if i < 0 {
		t.Fatalf("%s: no `version = 3` line", contribContainerd)
	}
	body = strings.Join(slices.Delete(lines, i, i+1), "")
	runtimes := parseCRIRuntimes(t, body)
	for name, rt := range runtimes {
		if rt.Path != "" && rt.Path != shim || rt.ConfigPath != "" && rt.ConfigPath != shimConfig {
			t.Fatalf("runtime %s after substitution: %+v", name, rt)
		}
	}
	return body, runtimes
}

// criRuntime is one runtime handler of the CRI plugin's config.
type criRuntime struct {
	Type                 string   `toml:"runtime_type"`
	Path                 string   `toml:"runtime_path"`
	PodAnnotations       []string `toml:"pod_annotations"`
	ContainerAnnotations []string `toml:"container_annotations"`
	ConfigPath           string   // options.ConfigPath
}

func parseCRIRuntimes(t testing.TB, body string) map[string]criRuntime {
	t.Helper()
	var cfg struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					criRuntime
					Options map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if _, err := toml.Decode(body, &cfg); err != nil {
		t.Fatalf("%s: %v", contribContainerd, err)
	}
	out := map[string]criRuntime{}
	for name, r := range cfg.Plugins[criRuntimeTable].Containerd.Runtimes {
		rt := r.criRuntime
		if p, ok := r.Options["ConfigPath"].(string); ok {
			rt.ConfigPath = p
		}
		out[name] = rt
	}
	if len(out) == 0 {
		t.Fatalf("%s: no [plugins.%q.containerd.runtimes.*] tables", contribContainerd, criRuntimeTable)
	}
	return out
}

// contribBudget is the RT budget a container gets by default: contrib/rtshim.toml's
// defaults.rt_runtime_us (the file is the test's shim config).
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

// rtRequest is what the pod's rtshim.io/ annotations ask for one container: policy number
// (1 SCHED_FIFO, 2 SCHED_RR) and priority, as the shim reads them (an override
// `<key>.container.<name>` wins over the pod-wide key; priority defaults to 50).
func rtRequest(t testing.TB, annotations map[string]string, container string) (policy uint32, priority uint32) {
	t.Helper()
	get := func(key string) string {
		if v, ok := annotations[key+".container."+container]; ok {
			return v
		}
		return annotations[key]
	}
	switch p := strings.ToUpper(get("rtshim.io/policy")); strings.TrimPrefix(p, "SCHED_") {
	case "FIFO":
		policy = 1
	case "RR":
		policy = 2
	default:
		t.Fatalf("%s: container %s: policy %q; the test expects SCHED_FIFO or SCHED_RR", contribPod, container, p)
	}
	priority = 50
	if v := get("rtshim.io/priority"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("%s: container %s: priority %q: %v", contribPod, container, v, err)
		}
		priority = uint32(n)
	}
	return policy, priority
}

// parseQuantity parses the Kubernetes quantities pod.yaml uses: CPU in cores or millicores
// ("500m", "1", "0.5"), returned in millicores when milli, else bytes ("32Mi", "1Gi", "1000").
func parseQuantity(s string, milli bool) (int64, error) {
	if milli {
		if v, ok := strings.CutSuffix(s, "m"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
		f, err := strconv.ParseFloat(s, 64)
		return int64(f * 1000), err
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// kubeletResources are the cgroup settings the kubelet (cgroupfs driver, cgroup v1) derives
// from a Guaranteed container's resources (pkg/kubelet/cm helpers_linux.go): CFS period
// 100 ms, quota = milliCPU × period / 1000, shares = milliCPU × 1024 / 1000.
type kubeletResources struct {
	quota, shares, memory int64
}

const cfsPeriodUS = 100000

// guaranteedResources checks that c is Guaranteed QoS (CPU and memory limits; requests, if
// given, equal to them) and returns its cgroup settings.
func guaranteedResources(t testing.TB, c k8sContainer) kubeletResources {
	t.Helper()
	var r kubeletResources
	for _, res := range []struct {
		name  string
		milli bool
		dst   *int64
	}{{"cpu", true, &r.quota}, {"memory", false, &r.memory}} {
		limit, ok := c.Resources.Limits[res.name]
		if !ok {
			t.Fatalf("%s: container %s has no %s limit; the example must be Guaranteed QoS", contribPod, c.Name, res.name)
		}
		if req, ok := c.Resources.Requests[res.name]; ok && req != limit {
			t.Fatalf("%s: container %s: %s request %s != limit %s; the example must be Guaranteed QoS", contribPod, c.Name, res.name, req, limit)
		}
		v, err := parseQuantity(limit, res.milli)
		if err != nil || v <= 0 {
			t.Fatalf("%s: container %s: %s limit %q: %v", contribPod, c.Name, res.name, limit, err)
		}
		*res.dst = v
	}
	for _, m := range []map[string]string{c.Resources.Limits, c.Resources.Requests} {
		for k := range m {
			if k != "cpu" && k != "memory" {
				t.Fatalf("%s: container %s: resource %q: the test knows cpu and memory only", contribPod, c.Name, k)
			}
		}
	}
	milliCPU := r.quota
	r.quota = max(milliCPU*cfsPeriodUS/1000, 1000)
	r.shares = max(milliCPU*1024/1000, 2)
	return r
}

func (r kubeletResources) String() string {
	return fmt.Sprintf("quota %d/%d µs, shares %d, memory %d", r.quota, cfsPeriodUS, r.shares, r.memory)
}
