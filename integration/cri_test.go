//go:build linux

package integration

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"google.golang.org/protobuf/proto"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criPauseImage is the pod sandbox image: /bin/pause of the test rootfs (testdata/pause.c),
// imported locally and pinned in the CRI config, so nothing is pulled.
const criPauseImage = "localhost/rtshim-it/pause:test"

// TestCRI plays the kubelet against containerd's CRI plugin, configured with the runtime
// handlers of contrib/containerd/config.toml (both forms), for every RuntimeClass of
// contrib/kubernetes/runtimeclass.yaml, with the pod of contrib/kubernetes/pod.yaml:
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
	requireRoot(t)
	requireRTGroupSched(t)
	pause := filepath.Join(rootfsDir, "bin", "pause")
	if !exists(pause) {
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
	runcState := filepath.Join(runContainerdDir, "runc", criNamespace)
	if !exists(runcState) {
		t.Cleanup(func() {
			if err := os.Remove(runcState); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	d := startContainerdWith(t, DaemonOpts{
		CRI:  true,
		TOML: []string{criTOML, body},
		// The rt-runc form gets runc options, so the shim reads its config from here.
		Env: []string{"RTSHIM_CONFIG=" + shimConfig},
	})

	images := []ociImage{{name: criPauseImage, layer: layerWithFile(t, "pause", pause), entrypoint: []string{"/pause"}}}
	app := layerFromDir(t, rootfsDir)
	for _, c := range pod.Spec.Containers {
		ref, err := reference.ParseDockerRef(c.Image)
		if err != nil {
			t.Fatalf("%s: container %s: image %q: %v", contribPod, c.Name, c.Image, err)
		}
		// The test rootfs (busybox) stands in for the pod's image, under the pod's name for it.
		if !slices.ContainsFunc(images, func(i ociImage) bool { return i.name == ref.String() }) {
			images = append(images, ociImage{name: ref.String(), layer: app, cmd: []string{"sh"}})
		}
	}
	importImages(t, d, criNamespace, images...)
	c := dialCRI(t, d)

	t.Run("runtime features", func(t *testing.T) { checkRuntimeFeatures(t, d, c, runtimes) })
	budget := contribBudget(t)
	for _, rc := range classes {
		t.Run(rc.Metadata.Name, func(t *testing.T) { runCRIPod(t, d, c, pod, "runc", criRuntime{Type: stockRuntime}, budget) })
	}
}

// checkRuntimeFeatures: CRI read the shim's runtime features for each of the config's
// handlers, and they are the stock runc shim's (runc's): `-info` works with runtimeoptions
// (ConfigPath) and with runc options. The introspection API (`ctr plugins inspect-runtime`,
// which runs `-info` the same way) says the same.
func checkRuntimeFeatures(t *testing.T, d *Daemon, c criClient, runtimes map[string]criRuntime) {
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
	if b, err := os.ReadFile(d.logPath()); err != nil {
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
	want := features("--runtime", stockRuntime)
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

// runCRIPod runs pod through CRI with runtime handler as the kubelet does, checks it, and
// removes it.
func runCRIPod(t *testing.T, d *Daemon, c criClient, pod k8sPod, handler string, rt criRuntime, budget int64) {
	// The kubelet's pod cgroup (cgroupfs driver): Guaranteed pods sit right under kubepods,
	// with the sum of their containers' quotas and shares. Under the daemon's namespace
	// cgroup, the daemon's teardown removes it whatever happens.
	uid := newUID(t)
	podCg := "/" + d.Namespace + "/kubepods/pod" + uid
	var podRes kubeletResources
	res := map[string]kubeletResources{}
	for _, ctr := range pod.Spec.Containers {
		r := guaranteedResources(t, ctr)
		res[ctr.Name] = r
		podRes.quota += r.quota
		podRes.shares += r.shares
	}
	createPodCgroup(t, podCg, podRes)
	podDir := cgroupV1Path("cpu", podCg)
	before := snapshotCPUTree(t)

	logDir := filepath.Join(d.Dir, "pods", uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{
		"io.kubernetes.pod.name":      pod.Metadata.Name,
		"io.kubernetes.pod.namespace": "default",
		"io.kubernetes.pod.uid":       uid,
	}
	sbConfig := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: pod.Metadata.Name, Namespace: "default", Uid: uid},
		LogDirectory: logDir,
		Labels:       labels,
		Annotations:  pod.Metadata.Annotations,
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: podCg,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			},
		},
	}
	ctx, cancel := criCtx()
	defer cancel()
	run, err := c.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: sbConfig, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox (handler %s): %v", handler, err)
	}
	sb := run.GetPodSandboxId()
	removed := false
	removePod := func() error {
		if removed {
			return nil
		}
		ctx, cancel := criCtx()
		defer cancel()
		if _, err := c.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb}); err != nil {
			return fmt.Errorf("StopPodSandbox: %w", err)
		}
		if _, err := c.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb}); err != nil {
			return fmt.Errorf("RemovePodSandbox: %w", err)
		}
		removed = true
		return nil
	}
	t.Cleanup(func() {
		if err := removePod(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// The kubelet removes the pod cgroup after the pod; runc made it in every hierarchy.
		for _, err := range removeCgroupTree(podCg) {
			t.Errorf("cleanup: %v", err)
		}
	})

	// The pause container: the pod annotations reached its spec, and it is left alone.
	sbStatus, err := c.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: sb, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if sbStatus.GetStatus().GetState() != cri.PodSandboxState_SANDBOX_READY || sbStatus.GetStatus().GetRuntimeHandler() != handler {
		t.Errorf("sandbox: state %v, handler %q; want READY, %q", sbStatus.GetStatus().GetState(), sbStatus.GetStatus().GetRuntimeHandler(), handler)
	}
	pauseInfo := parseCRIInfo(t, "sandbox", sbStatus.GetInfo())
	if pauseInfo.RuntimeType != rt.Type {
		t.Errorf("sandbox runtime type %q, want %q", pauseInfo.RuntimeType, rt.Type)
	}
	checkAnnotations(t, "pause container", pauseInfo.RuntimeSpec.Annotations, pod.Metadata.Annotations)
	if p, prio := schedOf(t, pauseInfo.Pid); p != 0 || prio != 0 {
		t.Errorf("pause (pid %d): %s %d, want SCHED_OTHER", pauseInfo.Pid, policyName(p), prio)
	}
	if cg := cpuCgroupOf(t, pauseInfo.Pid); cg != podCg+"/"+sb {
		t.Errorf("pause cgroup %s, want %s/<sandbox id>", cg, podCg)
	}
	if got := readCgroupInt(t, filepath.Join(podDir, sb, "cpu.rt_runtime_us")); got != 0 {
		t.Errorf("pause cgroup cpu.rt_runtime_us = %d, want 0", got)
	}

	// The app containers, as the kubelet creates them.
	var ids []string
	for _, ctr := range pod.Spec.Containers {
		img, err := c.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ctr.Image}})
		if err != nil || img.GetImage() == nil {
			t.Fatalf("container %s: image %s not found: %v", ctr.Name, ctr.Image, err)
		}
		r := res[ctr.Name]
		ctrLabels := maps.Clone(labels)
		ctrLabels["io.kubernetes.container.name"] = ctr.Name
		config := &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: ctr.Name},
			Image:    &cri.ImageSpec{Image: img.GetImage().GetId(), UserSpecifiedImage: ctr.Image},
			Command:  ctr.Command,
			Args:     ctr.Args,
			LogPath:  ctr.Name + "/0.log",
			Labels:   ctrLabels,
			Linux: &cri.LinuxContainerConfig{
				Resources: &cri.LinuxContainerResources{
					CpuPeriod: cfsPeriodUS, CpuQuota: r.quota, CpuShares: r.shares,
					MemoryLimitInBytes: r.memory, OomScoreAdj: -997, // the kubelet's for Guaranteed
				},
				SecurityContext: &cri.LinuxContainerSecurityContext{
					NamespaceOptions: sbConfig.Linux.SecurityContext.NamespaceOptions,
				},
			},
		}
		created, err := c.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: sb, Config: config, SandboxConfig: sbConfig})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", ctr.Name, err)
		}
		ids = append(ids, created.GetContainerId())
		if _, err := c.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: created.GetContainerId()}); err != nil {
			t.Fatalf("StartContainer %s: %v", ctr.Name, err)
		}
		t.Logf("%s: %s (%s)", ctr.Name, created.GetContainerId(), r)
	}

	for i, ctr := range pod.Spec.Containers {
		id := ids[i]
		wantPolicy, wantPrio := rtRequest(t, pod.Metadata.Annotations, ctr.Name)
		st, err := c.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetStatus().GetState() != cri.ContainerState_CONTAINER_RUNNING {
			t.Errorf("%s: state %v", ctr.Name, st.GetStatus().GetState())
		}
		info := parseCRIInfo(t, ctr.Name, st.GetInfo())
		checkAnnotations(t, ctr.Name, info.RuntimeSpec.Annotations, pod.Metadata.Annotations)
		if p, prio := schedOf(t, info.Pid); p != wantPolicy || prio != wantPrio {
			t.Errorf("%s (pid %d): %s %d, want %s %d", ctr.Name, info.Pid, policyName(p), prio, policyName(wantPolicy), wantPrio)
		}
		// What the container's own program saw (/proc/self/sched: prio is 99 - RT priority).
		logPolicy, logPrio := waitForProcSched(t, filepath.Join(logDir, ctr.Name, "0.log"))
		if logPolicy != int(wantPolicy) || logPrio != 99-int(wantPrio) {
			t.Errorf("%s: its log says policy %d prio %d, want %d and %d", ctr.Name, logPolicy, logPrio, wantPolicy, 99-wantPrio)
		}
		if cg := cpuCgroupOf(t, info.Pid); cg != podCg+"/"+id {
			t.Errorf("%s: cgroup %s, want %s/<container id>", ctr.Name, cg, podCg)
		}
		for file, want := range map[string]int64{"cpu.cfs_quota_us": -1, "cpu.rt_runtime_us": budget} {
			if got := readCgroupInt(t, filepath.Join(podDir, id, file)); got != want {
				t.Errorf("%s: %s = %d, want %d (its limit: %s)", ctr.Name, file, got, want, res[ctr.Name])
			}
		}
	}
	for file, want := range map[string]int64{"cpu.cfs_quota_us": -1, "cpu.rt_runtime_us": budget * int64(len(ids))} {
		if got := readCgroupInt(t, filepath.Join(podDir, file)); got != want {
			t.Errorf("pod cgroup: %s = %d, want %d", file, got, want)
		}
	}
	if got := criClaims(t, append(ids, sb)...); len(got) != len(ids) || slices.Contains(got, criNamespace+"."+sb+".json") {
		t.Errorf("rtshim claims %v, want one per app container and none for the sandbox", got)
	}

	// kubectl exec and probes: SCHED_OTHER.
	exec, err := c.ExecSync(ctx, &cri.ExecSyncRequest{ContainerId: ids[0], Cmd: []string{"/bin/schedinfo"}, Timeout: 10})
	if err != nil || exec.GetExitCode() != 0 {
		t.Errorf("ExecSync: %v, exit %d, stderr %q", err, exec.GetExitCode(), exec.GetStderr())
	} else if s := parseSched(t, string(exec.GetStdout())); s["policy"] != "SCHED_OTHER" {
		t.Errorf("ExecSync in %s: %v, want SCHED_OTHER", pod.Spec.Containers[0].Name, s)
	}

	if err := removePod(); err != nil {
		t.Fatal(err)
	}
	left, err := c.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{PodSandboxId: sb}})
	if err != nil || len(left.GetContainers()) > 0 {
		t.Errorf("containers left after RemovePodSandbox: %v %v", left.GetContainers(), err)
	}
	for file, want := range map[string]int64{"cpu.cfs_quota_us": podRes.quota, "cpu.rt_runtime_us": 0} {
		if got := readCgroupInt(t, filepath.Join(podDir, file)); got != want {
			t.Errorf("pod cgroup after RemovePodSandbox: %s = %d, want %d", file, got, want)
		}
	}
	if dirs, err := cgroupTree(podCg); err != nil {
		t.Error(err)
	} else if dirs = slices.DeleteFunc(dirs, func(dir string) bool { return strings.HasSuffix(dir, podCg) }); len(dirs) > 0 {
		t.Errorf("container cgroups left: %v", dirs)
	}
	if got := criClaims(t, ids...); len(got) > 0 {
		t.Errorf("rtshim claims left: %v", got)
	}
	d.assertRestored(t, before)
}

// checkAnnotations: CRI copied every pod annotation into the container's OCI spec (the
// runtime's pod_annotations pass rtshim.io/*).
func checkAnnotations(t testing.TB, what string, spec, pod map[string]string) {
	t.Helper()
	for k, v := range pod {
		if spec[k] != v {
			t.Errorf("%s: spec annotation %s = %q, want %q (pod_annotations)", what, k, spec[k], v)
		}
	}
}

// newUID is a pod UID, as the API server makes them.
func newUID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
