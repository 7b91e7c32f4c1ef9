package cgroupfix

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
)

// Bandwidth is a node's RT bandwidth for Kubernetes pods, in µs of RT runtime per PeriodUS.
type Bandwidth struct {
	PeriodUS int64
	// Allocated is what containers hold through rtshim.io/rt-bandwidth allocations: what the
	// kubelet counts as allocated.
	Allocated int64
	// Free is what a new pod's container could be granted now, wherever the kubelet puts it:
	// the least that Available admits for a container of a new pod of each QoS class.
	Free int64
}

// qosParents are where the kubelet (cgroupfs driver) puts pod cgroups below kubepods:
// Guaranteed pods directly, Burstable and BestEffort pods in their class's cgroup.
var qosParents = []string{"", "burstable", "besteffort"}

// PodBandwidth works out the node's RT bandwidth for pods below kubepods (the kubelet's cgroup
// root, "/kubepods"), by the grant's own arithmetic (Available): what the shim would admit.
// RT budget taken by anything else (a Docker container, a systemd service) lowers Free. It
// takes no lock: it is a snapshot, as the scheduler's view is.
func (m *Manager) PodBandwidth(kubepods string, periodUS int64) (Bandwidth, error) {
	b := Bandwidth{PeriodUS: periodUS}
	if !m.RTGroupSched() {
		return b, fmt.Errorf("%w: no cgroup v1 RT group scheduling on this node: there are no RT budgets to count", errdefs.ErrNotImplemented)
	}
	for i, q := range qosParents {
		free, err := m.Available(Claim{Leaf: path.Join(kubepods, q, "rtshim-probe-pod", "container"), PeriodUS: periodUS})
		if err != nil {
			return b, err
		}
		if i == 0 || free < b.Free {
			b.Free = free
		}
	}
	claims, err := m.State.Claims()
	var corrupt *CorruptError
	if err != nil && !errors.As(err, &corrupt) {
		return b, err
	}
	for _, c := range claims {
		if c.AllocatedUS > 0 && c.PeriodUS > 0 && strings.HasPrefix(c.Leaf, kubepods+"/") {
			b.Allocated += (c.AllocatedUS*periodUS + c.PeriodUS - 1) / c.PeriodUS
		}
	}
	return b, nil
}
