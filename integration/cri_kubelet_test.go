//go:build linux

package integration

import (
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rtshim/rtshim/internal/harness"
)

// runCRIPod runs pod through CRI with runtime handler as the kubelet does, checks it, and
// removes it.
func runCRIPod(t *testing.T, d *harness.Daemon, c criClient, pod k8sPod, handler string, rt criRuntime, budget int64) {
	k := &kubelet{t: t, d: d, c: c, pod: pod, handler: handler}
	k.createPodCgroup()
	before := harness.SnapshotCPUTree(t)
	k.runSandbox()
	k.checkPause(rt)
	k.startContainers()
	k.checkRunning(budget)
	k.removeSandbox()
	k.checkRemoved()
	d.AssertRestored(t, before)
}

// kubelet plays the kubelet for one pod.
type kubelet struct {
	t       *testing.T
	d       *harness.Daemon
	c       criClient
	pod     k8sPod
	handler string

	uid     string
	cgroup  string // the pod-level cgroup, relative to a hierarchy's root
	res     map[string]kubeletResources
	podRes  kubeletResources
	logDir  string
	config  *cri.PodSandboxConfig
	sandbox string
	ids     []string // the app containers', in pod.Spec.Containers' order
	removed bool
}

// createPodCgroup makes the pod-level cgroup (cgroupfs driver): a Guaranteed pod sits right
// under kubepods, with the sum of its containers' quotas and shares. Under the daemon's
// namespace cgroup, the daemon's teardown removes it whatever happens.
func (k *kubelet) createPodCgroup() {
	k.uid = newUID(k.t)
	k.cgroup = "/" + k.d.Namespace + "/kubepods/pod" + k.uid
	k.res = map[string]kubeletResources{}
	for _, ctr := range k.pod.Spec.Containers {
		r := guaranteedResources(k.t, ctr)
		k.res[ctr.Name] = r
		k.podRes.quota += r.quota
		k.podRes.shares += r.shares
	}
	makeQuotaCgroup(k.t, k.cgroup, k.podRes)
	k.t.Cleanup(func() {
		if err := k.remove(); err != nil {
			k.t.Errorf("cleanup: %v", err)
		}
		// The kubelet removes the pod cgroup after the pod; runc made it in every hierarchy.
		for _, err := range harness.RemoveCgroupTree(k.cgroup) {
			k.t.Errorf("cleanup: %v", err)
		}
	})
}

// cpuFile is file of the pod cgroup's child cgroup (none: the pod cgroup) in the cpu hierarchy.
func (k *kubelet) cpuFile(child, file string) string {
	return filepath.Join(harness.CPUV1(k.cgroup), child, file)
}

func (k *kubelet) runSandbox() {
	k.logDir = filepath.Join(k.d.Dir, "pods", k.uid)
	if err := os.MkdirAll(k.logDir, 0o755); err != nil {
		k.t.Fatal(err)
	}
	k.config = &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: k.pod.Metadata.Name, Namespace: "default", Uid: k.uid},
		LogDirectory: k.logDir,
		Labels: map[string]string{
			"io.kubernetes.pod.name":      k.pod.Metadata.Name,
			"io.kubernetes.pod.namespace": "default",
			"io.kubernetes.pod.uid":       k.uid,
		},
		Annotations: k.pod.annotations(),
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: k.cgroup,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				// Host network: the test hosts have no CNI.
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			},
		},
	}
	ctx, cancel := criCtx()
	defer cancel()
	run, err := k.c.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: k.config, RuntimeHandler: k.handler})
	if err != nil {
		k.t.Fatalf("RunPodSandbox (handler %s): %v", k.handler, err)
	}
	k.sandbox = run.GetPodSandboxId()
}

// checkPause: the pod annotations reached the pause container's spec, and it is left alone.
func (k *kubelet) checkPause(rt criRuntime) {
	t := k.t
	ctx, cancel := criCtx()
	defer cancel()
	st, err := k.c.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: k.sandbox, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetStatus().GetState() != cri.PodSandboxState_SANDBOX_READY || st.GetStatus().GetRuntimeHandler() != k.handler {
		t.Errorf("sandbox: state %v, handler %q; want READY, %q", st.GetStatus().GetState(), st.GetStatus().GetRuntimeHandler(), k.handler)
	}
	info := parseCRIInfo(t, "sandbox", st.GetInfo())
	if info.RuntimeType != rt.Type {
		t.Errorf("sandbox runtime type %q, want %q", info.RuntimeType, rt.Type)
	}
	checkAnnotations(t, "pause container", info.RuntimeSpec.Annotations, k.pod.annotations())
	if p, prio := schedOf(t, info.Pid); p != 0 || prio != 0 {
		t.Errorf("pause (pid %d): %s %d, want SCHED_OTHER", info.Pid, policyName(p), prio)
	}
	if cg := harness.CPUCgroupOf(t, info.Pid); cg != k.cgroup+"/"+k.sandbox {
		t.Errorf("pause cgroup %s, want %s/<sandbox id>", cg, k.cgroup)
	}
	if got := harness.ReadInt(t, k.cpuFile(k.sandbox, "cpu.rt_runtime_us")); got != 0 {
		t.Errorf("pause cgroup cpu.rt_runtime_us = %d, want 0", got)
	}
}

// startContainers creates and starts the pod's containers as the kubelet does: the image
// resolved through the image service, the resources of a Guaranteed container.
func (k *kubelet) startContainers() {
	t := k.t
	ctx, cancel := criCtx()
	defer cancel()
	for _, ctr := range k.pod.Spec.Containers {
		img, err := k.c.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ctr.Image}})
		if err != nil || img.GetImage() == nil {
			t.Fatalf("container %s: image %s not found: %v", ctr.Name, ctr.Image, err)
		}
		r := k.res[ctr.Name]
		labels := maps.Clone(k.config.Labels)
		labels["io.kubernetes.container.name"] = ctr.Name
		config := &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: ctr.Name},
			Image:    &cri.ImageSpec{Image: img.GetImage().GetId(), UserSpecifiedImage: ctr.Image},
			Command:  ctr.Command,
			Args:     ctr.Args,
			LogPath:  ctr.Name + "/0.log",
			Labels:   labels,
			Linux: &cri.LinuxContainerConfig{
				Resources: &cri.LinuxContainerResources{
					CpuPeriod: cfsPeriodUS, CpuQuota: r.quota, CpuShares: r.shares,
					MemoryLimitInBytes: r.memory, OomScoreAdj: -997, // the kubelet's for Guaranteed
				},
				SecurityContext: &cri.LinuxContainerSecurityContext{
					NamespaceOptions: k.config.Linux.SecurityContext.NamespaceOptions,
				},
			},
		}
		created, err := k.c.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: k.sandbox, Config: config, SandboxConfig: k.config})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", ctr.Name, err)
		}
		k.ids = append(k.ids, created.GetContainerId())
		if _, err := k.c.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: created.GetContainerId()}); err != nil {
			t.Fatalf("StartContainer %s: %v", ctr.Name, err)
		}
		t.Logf("%s: %s (%s)", ctr.Name, created.GetContainerId(), r)
	}
}

// checkRunning: each container runs what the pod annotations ask for it, seen from the host
// and by its own program, with its quota lifted and its budget granted; so is the pod
// cgroup; one shim serves the pod; probes (ExecSync) run SCHED_OTHER.
func (k *kubelet) checkRunning(budget int64) {
	t := k.t
	ctx, cancel := criCtx()
	defer cancel()
	for i, ctr := range k.pod.Spec.Containers {
		id := k.ids[i]
		wantPolicy, wantPrio := rtRequest(t, k.pod.annotations(), ctr.Name)
		st, err := k.c.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetStatus().GetState() != cri.ContainerState_CONTAINER_RUNNING {
			t.Errorf("%s: state %v", ctr.Name, st.GetStatus().GetState())
		}
		info := parseCRIInfo(t, ctr.Name, st.GetInfo())
		checkAnnotations(t, ctr.Name, info.RuntimeSpec.Annotations, k.pod.annotations())
		if p, prio := schedOf(t, info.Pid); p != wantPolicy || prio != wantPrio {
			t.Errorf("%s (pid %d): %s %d, want %s %d", ctr.Name, info.Pid, policyName(p), prio, policyName(wantPolicy), wantPrio)
		}
		// What the container's own program saw (/proc/self/sched: prio is 99 - RT priority).
		logPolicy, logPrio := waitForProcSched(t, filepath.Join(k.logDir, ctr.Name, "0.log"))
		if logPolicy != int(wantPolicy) || logPrio != 99-int(wantPrio) {
			t.Errorf("%s: its log says policy %d prio %d, want %d and %d", ctr.Name, logPolicy, logPrio, wantPolicy, 99-wantPrio)
		}
		if cg := harness.CPUCgroupOf(t, info.Pid); cg != k.cgroup+"/"+id {
			t.Errorf("%s: cgroup %s, want %s/<container id>", ctr.Name, cg, k.cgroup)
		}
		for file, want := range map[string]int64{"cpu.cfs_quota_us": -1, "cpu.rt_runtime_us": budget} {
			if got := harness.ReadInt(t, k.cpuFile(id, file)); got != want {
				t.Errorf("%s: %s = %d, want %d (its limit: %s)", ctr.Name, file, got, want, k.res[ctr.Name])
			}
		}
	}
	for file, want := range map[string]int64{"cpu.cfs_quota_us": -1, "cpu.rt_runtime_us": budget * int64(len(k.ids))} {
		if got := harness.ReadInt(t, k.cpuFile("", file)); got != want {
			t.Errorf("pod cgroup: %s = %d, want %d", file, got, want)
		}
	}
	// One shim serves the whole pod, as with the stock runc shim.
	if shims := criShims(k.d); len(shims) != 1 || !slices.Contains(slices.Collect(maps.Values(shims)), k.sandbox) {
		t.Errorf("shims (pid: id) %v, want one, started for the sandbox %s", shims, k.sandbox)
	}
	if got := criClaims(t, append(k.ids, k.sandbox)...); len(got) != len(k.ids) || slices.Contains(got, criNamespace+"."+k.sandbox+".json") {
		t.Errorf("rtshim claims %v, want one per app container and none for the sandbox", got)
	}

	exec, err := k.c.ExecSync(ctx, &cri.ExecSyncRequest{ContainerId: k.ids[0], Cmd: []string{"/bin/schedinfo"}, Timeout: 10})
	if err != nil || exec.GetExitCode() != 0 {
		t.Errorf("ExecSync: %v, exit %d, stderr %q", err, exec.GetExitCode(), exec.GetStderr())
	} else if s := harness.ParseSched(t, string(exec.GetStdout())); s["policy"] != "SCHED_OTHER" {
		t.Errorf("ExecSync in %s: %v, want SCHED_OTHER", k.pod.Spec.Containers[0].Name, s)
	}
}

// remove stops and removes the pod sandbox (and so its containers), once.
func (k *kubelet) remove() error {
	if k.removed || k.sandbox == "" {
		return nil
	}
	ctx, cancel := criCtx()
	defer cancel()
	if _, err := k.c.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: k.sandbox}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := k.c.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: k.sandbox}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	k.removed = true
	return nil
}

func (k *kubelet) removeSandbox() {
	if err := k.remove(); err != nil {
		k.t.Fatal(err)
	}
}

// checkRemoved: after RemovePodSandbox, the pod cgroup has its quota back and no budget, and
// no container, container cgroup, rtshim claim or shim is left.
func (k *kubelet) checkRemoved() {
	t := k.t
	ctx, cancel := criCtx()
	defer cancel()
	left, err := k.c.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{PodSandboxId: k.sandbox}})
	if err != nil || len(left.GetContainers()) > 0 {
		t.Errorf("containers left after RemovePodSandbox: %v %v", left.GetContainers(), err)
	}
	for file, want := range map[string]int64{"cpu.cfs_quota_us": k.podRes.quota, "cpu.rt_runtime_us": 0} {
		if got := harness.ReadInt(t, k.cpuFile("", file)); got != want {
			t.Errorf("pod cgroup after RemovePodSandbox: %s = %d, want %d", file, got, want)
		}
	}
	if dirs, err := harness.CgroupTree(k.cgroup); err != nil {
		t.Error(err)
	} else if dirs = slices.DeleteFunc(dirs, func(dir string) bool { return strings.HasSuffix(dir, k.cgroup) }); len(dirs) > 0 {
		t.Errorf("container cgroups left: %v", dirs)
	}
	if got := criClaims(t, k.ids...); len(got) > 0 {
		t.Errorf("rtshim claims left: %v", got)
	}
	for deadline := time.Now().Add(10 * time.Second); len(criShims(k.d)) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("shims left 10s after RemovePodSandbox: %v", criShims(k.d))
			break
		}
	}
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
