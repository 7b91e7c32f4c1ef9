//go:build linux

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/distribution/reference"
	"google.golang.org/protobuf/proto"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rtshim/rtshim/internal/harness"
)

// criPauseImage is the pod sandbox image: /bin/pause of the test rootfs (testdata/pause.c),
// imported locally and pinned in the CRI config, so nothing is pulled.
const criPauseImage = "localhost/rtshim-it/pause:test"

// TestCRI plays the kubelet against containerd's CRI plugin, configured with the runtime
// handlers of contrib/containerd/config.toml (both forms), for every RuntimeClass of
// contrib/kubernetes/00-runtimeclass.yaml, with the pod of contrib/kubernetes/pod.yaml:
//
//   - the shim's runtime features (`containerd-shim-rt-v2 -info`) are those of the stock runc
//     shim, in both forms, for CRI's runtime handlers and for the introspection API;
//   - RunPodSandbox (host network, cgroup parent a pod-level cgroup with the pod's CFS quota,
//     made first as the kubelet does), then CreateContainer/StartContainer of the pod's
//     Guaranteed containers with their CPU limits: the pause process runs SCHED_OTHER in a
//     cgroup without budget; each container runs the policy and priority the pod annotations
//     give it (override included), seen from the host and in its own log; the containers' and
//     the pod's CFS quota are lifted and their RT budgets granted; ExecSync runs SCHED_OTHER;
//   - StopPodSandbox/RemovePodSandbox: the pod cgroup has its quota back and no budget, no
//     container cgroup or rtshim claim is left, and the cpu tree is as before.
func TestCRI(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	pause := filepath.Join(env.Rootfs, "bin", "pause")
	if !harness.Exists(pause) {
		t.Fatalf("%s is missing: rebuild the rootfs (`make rootfs` compiles integration/testdata/pause.c)", pause)
	}
	classes, pod := loadKubernetesContrib(t)
	contribCfg, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	shimConfig := writeFile(t, t.TempDir(), "rtshim.toml", string(contribCfg))
	body, runtimes := criDaemonConfig(t, shimConfig)
	for _, rc := range classes {
		rt, ok := runtimes[rc.Handler]
		if !ok {
			t.Fatalf("RuntimeClass %s: handler %q is not a runtime of %s", rc.Metadata.Name, rc.Handler, contribContainerd)
		}
		if !slices.Contains(rt.PodAnnotations, "rtshim.io/*") {
			t.Fatalf("%s: runtime %s: pod_annotations %v do not pass rtshim.io/*", contribContainerd, rc.Handler, rt.PodAnnotations)
		}
	}

	scratch := t.TempDir()
	criTOML := fmt.Sprintf(`
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %q

[plugins."io.containerd.cri.v1.runtime"]
  # Lowering a sandbox's oom_score_adj needs CAP_SYS_RESOURCE, which the test hosts lack.
  restrict_oom_score_adj = true
  # Host-network pods need no CNI config; keep CRI's CNI and CDI watchers out of /etc.
  cdi_spec_dirs = [%q]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
`, criPauseImage, filepath.Join(scratch, "cdi"), filepath.Join(scratch, "cni/bin"), filepath.Join(scratch, "cni/net.d"))

	// runc's state of CRI containers is in /run/containerd/runc/k8s.io whatever the daemon's
	// config says; runc leaves the namespace directory behind.
	runcState := filepath.Join(harness.RunContainerdDir, "runc", criNamespace)
	if !harness.Exists(runcState) {
		t.Cleanup(func() {
			err := os.Remove(runcState)
			if errors.Is(err, syscall.ENOTEMPTY) && harness.OthersRunning() {
				return // another test binary's CRI containers
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	d := env.StartContainerd(t, harness.Options{
		CRI:  true,
		TOML: []string{criTOML, body},

		Env: []string{"RTSHIM_CONFIG=" + shimConfig},
	})

	images := []harness.OCIImage{{Name: criPauseImage, Layer: harness.LayerWithFile(t, "pause", pause), Entrypoint: []string{"/pause"}}}
	app := harness.LayerFromDir(t, env.Rootfs)
	for _, c := range pod.Spec.Containers {
		ref, err := reference.ParseDockerRef(c.Image)
		if err != nil {
			t.Fatalf("%s: container %s: image %q: %v", contribPod, c.Name, c.Image, err)
		}
		// The test rootfs (busybox) stands in for the pod's image, under the pod's name for it.
		if !slices.ContainsFunc(images, func(i harness.OCIImage) bool { return i.Name == ref.String() }) {
			images = append(images, harness.OCIImage{Name: ref.String(), Layer: app, Cmd: []string{"sh"}})
		}
	}
	d.ImportImages(t, criNamespace, images...)
	c := d.DialCRI(t)

	t.Run("runtime features", func(t *testing.T) { checkRuntimeFeatures(t, d, c, runtimes) })
	budget := contribBudget(t)
	for _, rc := range classes {
		t.Run(rc.Metadata.Name, func(t *testing.T) { runCRIPod(t, d, c, pod, rc.Handler, runtimes[rc.Handler], budget) })
	}
}

// checkRuntimeFeatures: CRI read the shim's runtime features for each of the config's
// handlers, and they are the stock runc shim's (runc's): `-info` works with runtimeoptions
// (ConfigPath) and with runc options. The introspection API (`ctr plugins inspect-runtime`,
// which runs `-info` the same way) says the same.
func checkRuntimeFeatures(t *testing.T, d *harness.Daemon, c criClient, runtimes map[string]criRuntime) {
	ctx, cancel := criCtx()
	defer cancel()
	st, err := c.Status(ctx, &cri.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]*cri.RuntimeHandler{}
	for _, h := range st.GetRuntimeHandlers() {
		handlers[h.GetName()] = h
	}
	stock := handlers["runc"] // CRI's built-in default runtime: the stock runc shim
	if stock.GetFeatures() == nil {
		t.Fatalf("CRI has no runtime features for the stock runc handler: %v", st.GetRuntimeHandlers())
	}
	t.Logf("stock runc shim, as CRI sees it: %v", stock.GetFeatures())
	for _, name := range slices.Sorted(maps.Keys(runtimes)) {
		switch h := handlers[name]; {
		case h == nil:
			t.Errorf("CRI status lists no runtime handler %q: %v", name, st.GetRuntimeHandlers())
		case h.GetFeatures() == nil:
			t.Errorf("handler %s: CRI could not read the runtime's features", name)
		case !proto.Equal(h.GetFeatures(), stock.GetFeatures()):
			t.Errorf("handler %s: features %v, stock runc shim %v", name, h.GetFeatures(), stock.GetFeatures())
		}
	}
	if b, err := os.ReadFile(d.LogPath()); err != nil {
		t.Error(err)
	} else {
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "failed to introspect features of runtime") {
				t.Errorf("containerd log: %s", strings.TrimSpace(line))
			}
		}
	}

	features := func(args ...string) string {
		t.Helper()
		out := d.MustCtr(t, append([]string{"plugins", "inspect-runtime"}, args...)...)
		var info struct{ Features json.RawMessage }
		if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Features) == 0 || string(info.Features) == "null" {
			t.Fatalf("ctr plugins inspect-runtime %v: %v, no features in:\n%s", args, err, out)
		}
		return string(info.Features)
	}
	want := features("--runtime", harness.StockRuntime)
	for _, name := range slices.Sorted(maps.Keys(runtimes)) {
		rt := runtimes[name]
		var args []string
		switch {
		case rt.Path != "":
			args = []string{"--runtime", rt.Path}
		case rt.ConfigPath != "":
			args = []string{"--runtime", rt.Type, "--runtime-config-path", rt.ConfigPath}
		default:
			args = []string{"--runtime", rt.Type}
		}
		if got := features(args...); got != want {
			t.Errorf("runtime %s: inspect-runtime %v features:\n%s\nstock runc shim:\n%s", name, args, got, want)
		}
	}
}
