// Package deviceplugin is `rtshim device-plugin`: a kubelet device plugin that makes the node's
// RT bandwidth a schedulable extended resource, rtshim.io/rt-bandwidth (1 unit = 1 ms of RT
// runtime per second). It advertises what the shim itself would admit for pods on the node
// (cgroupfix.PodBandwidth), follows the node as budgets come and go, and answers Allocate with
// the container annotation that makes the allocation the container's budget
// (oci.KeyAllocation): what the scheduler counted is exactly what the shim grants.
//
// The kubelet sees a fixed set of devices, one per unit the host could ever give (1000), of
// which the first N are healthy: N is the node's allocatable. Allocations take the lowest free
// devices (GetPreferredAllocation), and shrinking marks the highest unhealthy, so devices in
// use stay healthy whenever the node still has room for them.
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

// Devices is how many devices the plugin lists: every unit of a full second of RT runtime.
const Devices = oci.UnitPeriodUS / oci.UnitUS

// Plugin serves one node.
type Plugin struct {
	// Cgroups is the node's cgroup manager (its state dir holds the claims).
	Cgroups *cgroupfix.Manager
	// Kubepods is the kubelet's cgroup root below the cpu hierarchy ("/kubepods").
	Kubepods string
	// Rules bound what one container may be allocated: the shim refuses the rest anyway, and a
	// refusal at Allocate shows in the pod's events before it is placed for nothing.
	Rules *oci.Rules
	// Interval is how often the node's bandwidth is read again.
	Interval time.Duration

	pluginapi.UnimplementedDevicePluginServer

	mu      sync.Mutex
	healthy int
	changed chan struct{} // closed and replaced when healthy changes
}

// Units reads the node's bandwidth now and returns how many units are allocatable: what
// allocated containers hold plus what a new pod could be granted.
func (p *Plugin) Units() (int, cgroupfix.Bandwidth, error) {
	b, err := p.Cgroups.PodBandwidth(p.Kubepods, oci.UnitPeriodUS)
	if err != nil {
		return 0, b, err
	}
	return int(oci.BandwidthUnits(b.Allocated + b.Free)), b, nil
}

// Refresh reads the node again and tells ListAndWatch streams when the figure changed.
func (p *Plugin) Refresh(ctx context.Context) {
	n, b, err := p.Units()
	if err != nil {
		log.G(ctx).WithError(err).Warn("read the node's RT bandwidth; advertising none")
		n = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	if n != p.healthy {
		log.G(ctx).WithField("units", n).WithField("allocated_us", b.Allocated).WithField("free_us", b.Free).
			Info("node RT bandwidth changed")
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

func devices(healthy int) []*pluginapi.Device {
	out := make([]*pluginapi.Device, Devices)
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
		if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devices(n)}); err != nil {
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
		us := oci.AllocationBudgetUS(n, oci.UnitPeriodUS)
		if limit := p.Rules.Limits.MaxRTRuntimeUS * oci.UnitPeriodUS / p.Rules.Defaults.RTPeriodUS; us > limit {
			return nil, fmt.Errorf("%s: %d units are %d µs of RT runtime per second, above what rtshim grants one container here "+
				"(limits.max_rt_runtime_us %d per %d µs)", oci.ResourceRTBandwidth, n, us, p.Rules.Limits.MaxRTRuntimeUS, p.Rules.Defaults.RTPeriodUS)
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Annotations: map[string]string{oci.KeyAllocation: strconv.FormatInt(n, 10)},
		})
	}
	return resp, nil
}

func (p *Plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

var _ pluginapi.DevicePluginServer = (*Plugin)(nil)
