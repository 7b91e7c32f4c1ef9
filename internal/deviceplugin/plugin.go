// Package deviceplugin is `rtshim device-plugin`: a kubelet device plugin that makes the node's
// RT bandwidth a schedulable extended resource, rtshim.io/rt-bandwidth (1 unit = 1 ms of RT
// runtime per second), or on cgroup v2 nodes, which have no RT budgets, SCHED_DEADLINE bandwidth
// as rtshim.io/dl-bandwidth. It advertises what the shim itself would admit for pods on the node
// (cgroupfix.PodBandwidth), follows the node as budgets come and go, and answers Allocate with
// the container annotation that makes the allocation the container's budget
// (oci.KeyAllocation): what the scheduler counted is exactly what the shim grants.
//
// The kubelet sees a fixed set of devices, one per unit the host could ever give, of
// which the first N are healthy: N is the node's allocatable. Allocations take the lowest free
// devices (GetPreferredAllocation), and shrinking marks the highest unhealthy, so devices in
// use mostly stay healthy; after churn a running container may hold high devices that a
// shrink marks unhealthy, which the kubelet only reports (the counts stay right: it schedules
// by the number of healthy devices less what pods request).
package deviceplugin

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/log"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// secondUnits is how many units one CPU-second is.
const secondUnits = oci.UnitPeriodUS / oci.UnitUS

// Source is one schedulable bandwidth: cgroup v1 RT budgets (RTBudget) or, on cgroup v2
// nodes, SCHED_DEADLINE bandwidth (Deadline).
type Source interface {
	// Resource is the extended resource's name.
	Resource() string
	// AllocationKey is the container annotation an allocation is passed to the shim with.
	AllocationKey() string
	// Units is the node's allocatable now: what allocated containers hold plus what a new pod
	// could get. detail says it in µs for the log.
	Units() (units int64, detail string, err error)
	// Max is the most units the node could ever have: the plugin lists that many devices.
	Max() int
	// Check refuses an allocation of n units to one container that the shim would refuse, so
	// the pod fails at admission with the reason instead of looping in CrashLoopBackOff.
	Check(n int64) error
}

// Plugin serves one node.
type Plugin struct {
	Source Source
	// Interval is how often the node's bandwidth is read again.
	Interval time.Duration

	pluginapi.UnimplementedDevicePluginServer

	mu      sync.Mutex
	healthy int
	changed chan struct{} // closed and replaced when healthy changes
}

// RTBudget is the node's cgroup v1 RT budget for pods: rtshim.io/rt-bandwidth.
type RTBudget struct {
	// Cgroups is the node's cgroup manager (its state dir holds the claims).
	Cgroups *cgroupfix.Manager
	// Kubepods is the kubelet's cgroup root below the cpu hierarchy ("/kubepods").
	Kubepods string
	// Rules bound what one container may be allocated.
	Rules *oci.Rules
}

func (s RTBudget) Resource() string      { return oci.ResourceRTBandwidth }
func (s RTBudget) AllocationKey() string { return oci.KeyAllocation }

// Units is what allocated containers hold plus what a new pod could be granted, by the shim's
// own admission (cgroupfix.PodBandwidth).
func (s RTBudget) Units() (int64, string, error) {
	b, err := s.Cgroups.PodBandwidth(s.Kubepods, oci.UnitPeriodUS)
	if err != nil {
		return 0, "", err
	}
	return oci.BandwidthUnits(b.Allocated + b.Free), fmt.Sprintf("allocated %d µs/s, free %d µs/s", b.Allocated, b.Free), nil
}

// Max is a full second of RT runtime: a cgroup v1 budget is per CPU.
func (s RTBudget) Max() int { return secondUnits }

// Check refuses what the shim would refuse for any container holding n units (oci.CheckAllocation:
// below one scheduler tick or limits.min_rt_runtime_us, above limits.max_rt_runtime_us).
func (s RTBudget) Check(n int64) error {
	return oci.CheckAllocation(n, s.Rules.Defaults.RTPeriodUS, s.Rules)
}

// Refresh reads the node again and tells ListAndWatch streams when the figure changed.
func (p *Plugin) Refresh(ctx context.Context) {
	units, detail, err := p.Source.Units()
	n := int(min(units, int64(p.Source.Max())))
	if err != nil {
		log.G(ctx).WithError(err).Warn("read the node's bandwidth; advertising none")
		n = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	if n != p.healthy {
		log.G(ctx).WithField("resource", p.Source.Resource()).WithField("units", n).WithField("detail", detail).
			Info("node bandwidth changed")
		p.healthy = n
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

func (p *Plugin) state() (int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.healthy, p.changed
}

// deviceID names device i; IDs sort in device order.
func deviceID(i int) string { return fmt.Sprintf("rt-bw-%04d", i) }

func deviceIndex(id string) (int, bool) {
	n, err := strconv.Atoi(id[len("rt-bw-"):])
	return n, err == nil && len(id) > len("rt-bw-")
}

func devices(healthy, total int) []*pluginapi.Device {
	out := make([]*pluginapi.Device, total)
	for i := range out {
		h := pluginapi.Healthy
		if i >= healthy {
			h = pluginapi.Unhealthy
		}
		out[i] = &pluginapi.Device{ID: deviceID(i), Health: h}
	}
	return out
}

func (p *Plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the device list, and again whenever the node's figure changes.
func (p *Plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	for {
		n, changed := p.state()
		if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devices(n, p.Source.Max())}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-s.Context().Done():
			return nil
		}
	}
}

// GetPreferredAllocation prefers the lowest devices, so that those in use are the last to be
// marked unhealthy when the node's figure shrinks.
func (p *Plugin) GetPreferredAllocation(_ context.Context, r *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, c := range r.ContainerRequests {
		ids := slices.Clone(c.MustIncludeDeviceIDs)
		avail := slices.Clone(c.AvailableDeviceIDs)
		sort.Slice(avail, func(i, j int) bool { return less(avail[i], avail[j]) })
		for _, id := range avail {
			if len(ids) >= int(c.AllocationSize) {
				break
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

func less(a, b string) bool {
	i, ok1 := deviceIndex(a)
	j, ok2 := deviceIndex(b)
	if ok1 && ok2 {
		return i < j
	}
	return a < b
}

// Allocate answers each container with its allocation in units, as the annotation the shim
// takes as the container's budget. What the shim would refuse anyway (more than
// limits.max_rt_runtime_us, less than the smallest budget) is refused here, so the pod fails
// at admission with the reason instead of looping in CrashLoopBackOff.
func (p *Plugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range r.ContainerRequests {
		n := int64(len(c.DevicesIds))
		if err := p.Source.Check(n); err != nil {
			return nil, err
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Annotations: map[string]string{p.Source.AllocationKey(): strconv.FormatInt(n, 10)},
		})
	}
	return resp, nil
}

func (p *Plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

var _ pluginapi.DevicePluginServer = (*Plugin)(nil)
