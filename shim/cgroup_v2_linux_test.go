package shim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	taskapi "github.com/containerd/containerd/api/runtime/task/v3"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/rtcontainer"
)

// fakeStock is the stock runc task service: Create "starts" an init with a fixed PID.
type fakeStock struct {
	taskapi.TTRPCTaskService
	created []string
	pid     uint32
}

func (f *fakeStock) Create(_ context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	f.created = append(f.created, r.ID)
	return &taskapi.CreateTaskResponse{Pid: f.pid}, nil
}

// v2Host is a fake cgroup v2 host: procfs with a mountinfo that has only cgroup2 (mounted on
// a temp dir), the kernel config in config.gz, and the init's /proc/<pid>/cgroup.
type v2Host struct {
	Host
	cgroupRoot, stateDir string
}

const initPID = 4242

func newV2Host(t *testing.T, kernelConfig, initCgroup string) v2Host {
	t.Helper()
	proc, cgroupRoot := t.TempDir(), t.TempDir()
	write := func(rel string, b []byte) {
		p := filepath.Join(proc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self/mountinfo", []byte("30 25 0:26 / "+cgroupRoot+" rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("CONFIG_CGROUP_SCHED=y\n" + kernelConfig))
	zw.Close()
	write("config.gz", z.Bytes())
	write("cmdline", []byte("console=ttyS0 quiet\n"))
	write(filepath.Join("4242", "cgroup"), []byte("0::"+initCgroup+"\n"))
	// The shim's own stat: a claim's owner is identified by its start time.
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(strconv.Itoa(os.Getpid()), "stat"), stat)
	stateDir := t.TempDir()
	t.Setenv(config.EnvPath, filepath.Join(t.TempDir(), "rtshim.toml"))
	if err := os.WriteFile(os.Getenv(config.EnvPath), []byte("state_dir = \""+stateDir+"\"\n"+permissiveLimits), 0o644); err != nil {
		t.Fatal(err)
	}
	return v2Host{Host: Host{ProcRoot: proc, BootDir: t.TempDir()}, cgroupRoot: cgroupRoot, stateDir: stateDir}
}

// permissiveLimits allow everything CAP_SYS_NICE does, so grant mode hands out CAP_SYS_NICE
// (these tests use grant mode: a fake init has no threads to set a policy on).
const permissiveLimits = "[limits]\nmax_priority = 99\nmin_nice = -20\nmax_rt_runtime_us = 950000\nmax_pod_rt_runtime_us = 950000\n"

// bundle writes a config.json asking for annotations, with the given cgroupsPath.
func bundle(t *testing.T, cgroupsPath string, annotations map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	spec := specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"/bin/true"}},
		Annotations: annotations, Linux: &specs.Linux{CgroupsPath: cgroupsPath}}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCreateRefusesRTGroupSchedV2: on cgroup v2 with a kernel whose RT_GROUP_SCHED refuses
// real-time tasks in non-root cgroups, Create fails up front with FailedPrecondition and the
// fix, before runc create and without touching the spec or recording anything. Never with
// NotImplemented: containerd takes that from task.Create as "the shim speaks an older task
// API", retries with that API and shows the user "service containerd.task.v2.Task" instead.
func TestCreateRefusesRTGroupSchedV2(t *testing.T) {
	h := newV2Host(t, "CONFIG_RT_GROUP_SCHED=y\n", "/default/c1")
	stock := &fakeStock{pid: initPID}
	s := New(stock, h.Host)
	b := bundle(t, "/default/c1", map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80"})
	specBefore, _ := os.ReadFile(filepath.Join(b, "config.json"))

	ctx := namespaces.WithNamespace(context.Background(), "default")
	_, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "c1", Bundle: b})
	if err == nil {
		t.Fatal("Create of a FIFO container succeeded on a kernel that refuses RT in cgroup v2")
	}
	err = errgrpc.ToNative(err)
	if !errdefs.IsFailedPrecondition(err) || errdefs.IsNotImplemented(err) {
		t.Errorf("want FailedPrecondition, got %v", err)
	}
	for _, want := range []string{"rtshim.io/policy=SCHED_FIFO", "CONFIG_RT_GROUP_SCHED=y", "rt_group_sched=0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if len(stock.created) > 0 {
		t.Error("runc create ran")
	}
	if specAfter, _ := os.ReadFile(filepath.Join(b, "config.json")); !bytes.Equal(specBefore, specAfter) {
		t.Error("config.json changed")
	}
	if claims, _ := (cgroupfix.State{Dir: h.stateDir}).Claims(); len(claims) > 0 {
		t.Errorf("claims left: %v", claims)
	}

}

// TestCreateLocatesCgroupV2: after runc create the claim follows the cgroup the init is in,
// as /proc/<pid>/cgroup says, not the one guessed from linux.cgroupsPath; the pod exemption
// follows it.
func TestCreateLocatesCgroupV2(t *testing.T) {
	for _, tc := range []struct {
		name, cgroupsPath, real string
		systemd                 bool
	}{
		{"cgroupfs, where guessed", "/pod1/c1", "/pod1/c1", false},
		{"systemd, where guessed", "pod1.slice:cri-containerd:c1", "/pod1.slice/cri-containerd-c1.scope", true},
		{"elsewhere", "/pod1/c1", "/pod2/c1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newV2Host(t, "# CONFIG_RT_GROUP_SCHED is not set\n", tc.real)
			pods := map[string]bool{}
			for _, pod := range []string{"/pod1", "/pod2", "/pod1.slice"} {
				pods[pod] = true
				os.MkdirAll(filepath.Join(h.cgroupRoot, pod), 0o755)
				os.WriteFile(filepath.Join(h.cgroupRoot, pod, "cpu.max"), []byte("50000 100000\n"), 0o644)
			}
			stock := &fakeStock{pid: initPID}
			s := New(stock, h.Host)
			// Grant mode: the fake init has no threads to set a policy on.
			b := bundle(t, tc.cgroupsPath, map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/mode": "grant",
				"io.kubernetes.cri.container-type": "container"})
			ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
			// The runtime options carry the config, as CRI sends them: its [runc] table picks
			// runc's cgroup driver.
			opts, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{
				ConfigBody: []byte(fmt.Sprintf("state_dir = %q\n%s[runc]\nsystemd_cgroup = %v\n", h.stateDir, permissiveLimits, tc.systemd))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "c1", Bundle: b, Options: opts}); err != nil {
				t.Fatal(err)
			}
			c, err := (cgroupfix.State{Dir: h.stateDir}).LoadClaim("k8s.io", "c1")
			if err != nil || c == nil {
				t.Fatalf("claim %v, %v", c, err)
			}
			if c.Leaf != tc.real || c.Pod != filepath.Dir(tc.real) {
				t.Errorf("claim leaf %s pod %s, want %s in %s", c.Leaf, c.Pod, tc.real, filepath.Dir(tc.real))
			}
			for pod := range pods {
				b, _ := os.ReadFile(filepath.Join(h.cgroupRoot, pod, "cpu.max"))
				got, exempt := strings.TrimSpace(string(b)), pod == filepath.Dir(tc.real)
				// cgroupfs files are written without truncating: a plain file keeps the tail.
				if exempt != strings.HasPrefix(got, "max") {
					t.Errorf("%s cpu.max = %q, want exempt %v", pod, got, exempt)
				}
			}
		})
	}
}

// TestCreateRefusesRestrictedDeadlineV2: a SCHED_DEADLINE container pinned to fewer CPUs than
// its root domain fails Create with the reason, before runc create; unpinned it goes on.
func TestCreateRefusesRestrictedDeadlineV2(t *testing.T) {
	h := newV2Host(t, "# CONFIG_RT_GROUP_SCHED is not set\n", "/default/c1")
	if err := os.WriteFile(filepath.Join(h.cgroupRoot, "cpuset.cpus.effective"), []byte("0-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dl := map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=1ms,deadline=10ms,period=10ms", "rtshim.io/mode": "grant"}
	ctx := namespaces.WithNamespace(context.Background(), "default")
	for _, tc := range []struct {
		cpus    string
		refused bool
	}{{"1", true}, {"0-1", false}, {"", false}} {
		stock := &fakeStock{pid: initPID}
		b := bundle(t, "/default/c1", dl)
		spec, _ := rtcontainer.ReadSpec(filepath.Join(b, "config.json"))
		spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: tc.cpus}}
		if err := rtcontainer.WriteSpec(filepath.Join(b, "config.json"), spec); err != nil {
			t.Fatal(err)
		}
		_, err := New(stock, h.Host).Create(ctx, &taskapi.CreateTaskRequest{ID: "c1", Bundle: b})
		if !tc.refused {
			if err != nil {
				t.Errorf("cpus %q: %v", tc.cpus, err)
			}
			continue
		}
		err = errgrpc.ToNative(err)
		if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "root domain") || len(stock.created) > 0 {
			t.Errorf("cpus %q: want FailedPrecondition about the root domain before runc create, got %v (runc create ran: %v)",
				tc.cpus, err, len(stock.created) > 0)
		}
	}
}
