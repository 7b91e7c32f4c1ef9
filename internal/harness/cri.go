//go:build linux

package harness

// A CRI client for what must go through containerd's CRI plugin (NRI only sees CRI
// containers): a private containerd with CRI, local images, and pods played the way the
// kubelet plays them. The benchmarks (bench) and the VM tier (vmtest) use it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// CRINamespace is the containerd namespace of everything CRI makes.
	CRINamespace  = "k8s.io"
	criPauseImage = "localhost/rtshim-harness/pause:test"
	// CRIAppImage is the image StartCRI imports: the test rootfs.
	CRIAppImage = "localhost/rtshim-harness/app:test"
)

// criTOML configures CRI for host-network pods without CNI, with the rootfs's /bin/pause as
// the pinned sandbox image and the rt shim as runtime handler "rt" (pod annotations
// rtshim.io/* reach its containers' specs); scratch holds the CNI and CDI dirs it must not
// take from /etc.
func criTOML(scratch, snapshotter string) string {
	images := ""
	if snapshotter != "" {
		images = fmt.Sprintf("[plugins.\"io.containerd.cri.v1.images\"]\n  snapshotter = %q\n", snapshotter)
	}
	return images + CRIPluginTOML(criPauseImage, filepath.Join(scratch, "cdi"), filepath.Join(scratch, "cni/bin"),
		filepath.Join(scratch, "cni/net.d")) + fmt.Sprintf(`  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt]
    runtime_type = %q
    pod_annotations = ["rtshim.io/*"]
`, RTRuntime)
}

// CRIPluginTOML is the CRI settings every test containerd needs: the pinned sandbox image, no
// oom_score_adj below the daemon's, and CDI and CNI dirs of the test's own instead of /etc's.
func CRIPluginTOML(pauseImage, cdiDir, cniBinDir, cniConfDir string) string {
	return fmt.Sprintf(`
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %q

[plugins."io.containerd.cri.v1.runtime"]
  # Lowering a sandbox's oom_score_adj needs CAP_SYS_RESOURCE, which the test hosts lack.
  restrict_oom_score_adj = true
  cdi_spec_dirs = [%q]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
`, pauseImage, cdiDir, cniBinDir, cniConfDir)
}

// StartCRI starts a private containerd with CRI (and o's other settings; see
// StartContainerd), imports the pause image and CRIAppImage (the test rootfs) and returns a
// client once CRI reports ready.
func (e *Env) StartCRI(t testing.TB, o Options) (*Daemon, CRIClient) {
	t.Helper()
	pause := filepath.Join(e.Rootfs, "bin", "pause")
	if !Exists(pause) {
		t.Fatalf("%s is missing: rebuild the rootfs (`make rootfs` compiles integration/testdata/pause.c)", pause)
	}
	// runc's state of CRI containers is in /run/containerd/runc/k8s.io whatever the daemon's
	// config says; runc leaves the namespace directory behind.
	runcState := filepath.Join(RunContainerdDir, "runc", CRINamespace)
	if !Exists(runcState) {
		t.Cleanup(func() {
			err := os.Remove(runcState)
			if errors.Is(err, syscall.ENOTEMPTY) && OthersRunning() {
				return // another test binary's CRI containers
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	o.CRI = true
	o.TOML = append(o.TOML, criTOML(t.TempDir(), o.Snapshotter))
	d := e.StartContainerd(t, o)
	d.ImportImages(t, CRINamespace,
		OCIImage{Name: criPauseImage, Layer: LayerWithFile(t, "pause", pause), Entrypoint: []string{"/pause"}},
		OCIImage{Name: CRIAppImage, Layer: LayerFromDir(t, e.Rootfs), Cmd: []string{"sh"}})
	return d, d.DialCRI(t)
}

// CRIClient is a CRI client of a test daemon: what the kubelet talks to.
type CRIClient struct {
	cri.RuntimeServiceClient
	cri.ImageServiceClient
}

// DialCRI connects to the daemon's CRI plugin and waits until it reports the runtime ready.
func (d *Daemon) DialCRI(t testing.TB) CRIClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := CRIClient{cri.NewRuntimeServiceClient(conn), cri.NewImageServiceClient(conn)}
	deadline := time.Now().Add(d.env.Timeouts.Start)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.Status(ctx, &cri.StatusRequest{})
		cancel()
		if err == nil && slices.ContainsFunc(st.GetStatus().GetConditions(), func(c *cri.RuntimeCondition) bool {
			return c.Type == cri.RuntimeReady && c.Status
		}) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRI not ready within %v: %v %v", d.env.Timeouts.Start, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// criCtx bounds one CRI call.
func (d *Daemon) criCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
}

// CRIPod is a host-network pod with its sandbox running, under the daemon's namespace cgroup
// (which the daemon's teardown removes whatever happens).
type CRIPod struct {
	d      *Daemon
	c      CRIClient
	config *cri.PodSandboxConfig
	id     string
}

// RunPod runs a pod sandbox through handler ("" is CRI's default, the stock runc shim) with
// annotations; t.Cleanup removes it.
func (d *Daemon) RunPod(t testing.TB, c CRIClient, name, handler string, annotations map[string]string) *CRIPod {
	t.Helper()
	uid := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	p := &CRIPod{d: d, c: c, config: &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: "default", Uid: uid},
		LogDirectory: filepath.Join(d.Dir, "pods", uid),
		Annotations:  annotations,
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: "/" + d.Namespace + "/kubepods/pod" + uid,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			},
		},
	}}
	if err := os.MkdirAll(p.config.LogDirectory, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := d.criCtx()
	defer cancel()
	run, err := c.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: p.config, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox %s (handler %q): %v", name, handler, err)
	}
	p.id = run.GetPodSandboxId()
	t.Cleanup(func() {
		ctx, cancel := d.criCtx()
		defer cancel()
		if _, err := c.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Errorf("cleanup: StopPodSandbox %s: %v", name, err)
		}
		if _, err := c.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
			t.Errorf("cleanup: RemovePodSandbox %s: %v", name, err)
		}
		for _, err := range RemoveCgroupTree(p.config.Linux.CgroupParent) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

// CRIStart is one container's CreateContainer and StartContainer.
type CRIStart struct {
	Elapsed  time.Duration // CreateContainer called to StartContainer returned
	Err      error         // the first failed call's error, as CRI returned it
	Pid      int
	Spec     CRISpec // as CRI made it (and NRI adjusted it), started or not
	Policy   uint32  // of Pid's main thread, as the kernel reports it
	Priority uint32
}

// CRISpec is what Start reads of the OCI spec CRI made (verbose ContainerStatus).
type CRISpec struct {
	Annotations map[string]string `json:"annotations"`
	Process     struct {
		Scheduler *struct {
			Policy   string `json:"policy"`
			Priority int32  `json:"priority"`
		} `json:"scheduler"`
	} `json:"process"`
}

// Start creates and starts a container of the pod running /bin/sleep, with CAP_SYS_NICE
// (whichever route sets the policy, the container may), and reads its policy from the host.
// The container, if created, stays until Remove.
func (p *CRIPod) Start(t testing.TB, name string) (CRIStart, string) {
	t.Helper()
	ctx, cancel := p.d.criCtx()
	defer cancel()
	config := &cri.ContainerConfig{
		Metadata: &cri.ContainerMetadata{Name: name},
		Image:    &cri.ImageSpec{Image: CRIAppImage},
		Command:  []string{"/bin/sleep", "600"},
		LogPath:  name + ".log",
		Linux: &cri.LinuxContainerConfig{
			SecurityContext: &cri.LinuxContainerSecurityContext{
				NamespaceOptions: p.config.Linux.SecurityContext.NamespaceOptions,
				Capabilities:     &cri.Capability{AddCapabilities: []string{"SYS_NICE"}},
			},
		},
	}
	var s CRIStart
	begin := time.Now()
	created, err := p.c.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: p.id, Config: config, SandboxConfig: p.config})
	if err != nil {
		s.Err = fmt.Errorf("CreateContainer: %w", err)
		return s, ""
	}
	id := created.GetContainerId()
	_, err = p.c.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: id})
	s.Elapsed = time.Since(begin)
	// The spec CRI made (and NRI adjusted) is there whether the container started or not.
	st, serr := p.c.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if serr != nil {
		t.Fatalf("ContainerStatus %s: %v", name, serr)
	}
	var info struct {
		Pid         int     `json:"pid"`
		RuntimeSpec CRISpec `json:"runtimeSpec"`
	}
	if jerr := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); jerr != nil {
		t.Fatalf("ContainerStatus %s: verbose info (%v):\n%s", name, jerr, st.GetInfo()["info"])
	}
	s.Spec = info.RuntimeSpec
	if err != nil {
		s.Err = fmt.Errorf("StartContainer: %w", err)
		return s, id
	}
	if info.Pid <= 0 {
		t.Fatalf("ContainerStatus %s: running, but no pid in the verbose info:\n%s", name, st.GetInfo()["info"])
	}
	s.Pid = info.Pid
	a, err := unix.SchedGetAttr(s.Pid, 0)
	if err != nil {
		t.Fatalf("sched_getattr(%d): %v", s.Pid, err)
	}
	s.Policy, s.Priority = a.Policy, a.Priority
	return s, id
}

// Remove stops (at once) and removes container id, if there is one.
func (p *CRIPod) Remove(t testing.TB, id string) {
	t.Helper()
	if id == "" {
		return
	}
	ctx, cancel := p.d.criCtx()
	defer cancel()
	if _, err := p.c.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StopContainer %s: %v", id, err)
	}
	if _, err := p.c.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer %s: %v", id, err)
	}
}

// WaitNRIPlugin waits until the daemon's log says that the NRI plugin Options.NRI installed
// as 10-<name> has registered.
func (d *Daemon) WaitNRIPlugin(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(d.env.Timeouts.Start)
	for {
		log, _ := os.ReadFile(d.LogPath())
		// logrus quotes the message: registered as \"10-nri-sched\"
		if strings.Contains(string(log), fmt.Sprintf(`registered as \"10-%s\"`, name)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NRI plugin %s did not register within %v; containerd log:\n%s", name, d.env.Timeouts.Start, d.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
