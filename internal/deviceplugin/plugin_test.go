package deviceplugin

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// tree is a cgroup v1 cpu hierarchy in a temp dir, as cgroupfs shows it to reads.
type tree struct {
	t    *testing.T
	root string
}

func (tr tree) group(cg string, runtime int64) {
	dir := filepath.Join(tr.root, cg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cpu.rt_runtime_us"), []byte(strconv.FormatInt(runtime, 10)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cpu.rt_period_us"), []byte("1000000\n"), 0o644)
}

// fakeKubelet is the kubelet's registration service: what a device plugin talks to first.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	registered chan *pluginapi.RegisterRequest
}

func (k *fakeKubelet) Register(_ context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.registered <- r
	return &pluginapi.Empty{}, nil
}

func TestPlugin(t *testing.T) {
	tr := tree{t, t.TempDir()}
	tr.group("/", 950000)
	tr.group("/kubepods", 0)
	rules := oci.DefaultRules()
	p := &Plugin{Source: RTBudget{Cgroups: &cgroupfix.Manager{CPU: cgroupfix.DirFS{Root: tr.root}, State: cgroupfix.State{Dir: t.TempDir()}},
		Kubepods: "/kubepods", Rules: &rules}, Interval: 50 * time.Millisecond}

	dir, err := os.MkdirTemp("/tmp", "rtshim-dp-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := &fakeKubelet{registered: make(chan *pluginapi.RegisterRequest, 4)}
	ksrv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(ksrv, k)
	l, err := net.Listen("unix", filepath.Join(dir, "kubelet.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go ksrv.Serve(l)
	t.Cleanup(ksrv.Stop)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Serve(ctx, dir) }()
	t.Cleanup(func() { cancel(); <-done })

	var reg *pluginapi.RegisterRequest
	select {
	case reg = <-k.registered:
	case <-time.After(5 * time.Second):
		t.Fatal("no registration")
	}
	if reg.ResourceName != "rtshim.io/rt-bandwidth" || reg.Endpoint != SocketName || reg.Version != pluginapi.Version {
		t.Errorf("registered %+v", reg)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, SocketName), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pluginapi.NewDevicePluginClient(conn)
	stream, err := c.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	healthy := func() int {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, d := range r.Devices {
			if d.Health == pluginapi.Healthy {
				if i != n {
					t.Errorf("healthy device %s after an unhealthy one", d.ID)
				}
				n++
			}
		}
		if len(r.Devices) != secondUnits {
			t.Errorf("%d devices, want %d", len(r.Devices), secondUnits)
		}
		return n
	}
	if n := healthy(); n != 950 {
		t.Errorf("empty node: %d units, want 950", n)
	}
	// RT budget taken outside Kubernetes lowers the figure, within an interval.
	tr.group("/docker", 300000)
	if n := healthy(); n != 650 {
		t.Errorf("after a Docker container took 300000 µs: %d units, want 650", n)
	}

	pref, err := c.GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{
		{AvailableDeviceIDs: []string{"rt-bw-0007", "rt-bw-0002", "rt-bw-0010", "rt-bw-0003"}, AllocationSize: 2}}})
	if err != nil || len(pref.ContainerResponses) != 1 || len(pref.ContainerResponses[0].DeviceIDs) != 2 ||
		pref.ContainerResponses[0].DeviceIDs[0] != "rt-bw-0002" || pref.ContainerResponses[0].DeviceIDs[1] != "rt-bw-0003" {
		t.Errorf("preferred allocation %v, %v; want the two lowest", pref, err)
	}
	ids := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, deviceID(i))
		}
		return out
	}
	a, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids(100)}}})
	if err != nil || a.ContainerResponses[0].Annotations[oci.KeyAllocation] != "100" {
		t.Errorf("allocate 100: %v, %v; want annotation %s=100", a, err, oci.KeyAllocation)
	}
	if _, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids(401)}}}); err == nil {
		t.Error("401 units (above limits.max_rt_runtime_us 400000) allocated")
	}
	// Below one scheduler tick (4000 µs assumed when CONFIG_HZ is unknown) the shim refuses
	// the container: so does Allocate, with the shim's reason.
	if _, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids(3)}}}); err == nil ||
		!strings.Contains(err.Error(), "below the smallest RT budget allowed here, 4000 µs") {
		t.Errorf("3 units (3000 µs, below one tick) allocated: %v", err)
	}
	if a, err := c.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: ids(4)}}}); err != nil ||
		a.ContainerResponses[0].Annotations[oci.KeyAllocation] != "4" {
		t.Errorf("allocate 4 (one tick): %v, %v", a, err)
	}

	// A restarted kubelet removes the plugin's socket: the plugin registers again.
	os.Remove(filepath.Join(dir, SocketName))
	select {
	case <-k.registered:
	case <-time.After(5 * time.Second):
		t.Fatal("no registration after the socket was removed")
	}
}
