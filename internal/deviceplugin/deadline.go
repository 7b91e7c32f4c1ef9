package deviceplugin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/sched"
	"github.com/rtshim/rtshim/oci"
)

// Deadline is a cgroup v2 node's SCHED_DEADLINE bandwidth: rtshim.io/dl-bandwidth. The kernel
// admits DEADLINE tasks per root domain up to its CPUs times the global RT share; what is free
// there is where sched_setattr starts refusing (sched.ReadDeadlineBandwidth).
type Deadline struct {
	Procs   sched.Procs
	SysRoot string
	// Cgroups holds the claims: the SCHED_DEADLINE tasks of containers with an allocation
	// count as allocated (the kubelet counts their units), not as used.
	Cgroups *cgroupfix.Manager
}

func (s Deadline) Resource() string      { return oci.ResourceDLBandwidth }
func (s Deadline) AllocationKey() string { return oci.KeyDLAllocation }

// Units is the free bandwidth plus what allocated containers' tasks use, in ms per second.
// The kubelet subtracts their allocations, which cover at least that use: it never counts
// more than the kernel admits.
func (s Deadline) Units() (int64, string, error) {
	b, err := s.Procs.ReadDeadlineBandwidth(s.SysRoot)
	if err != nil {
		return 0, "", err
	}
	allocated, err := s.allocatedUse()
	if err != nil {
		return 0, "", err
	}
	units := (b.Free() + allocated) * (oci.UnitPeriodUS / oci.UnitUS) >> 20
	return units, fmt.Sprintf("%d CPUs, capacity %d, used %d (servers %d), by allocated containers %d (2^20 = one CPU)",
		b.CPUs, b.Capacity, b.Used, b.Servers, allocated), nil
}

// allocatedUse is the bandwidth the SCHED_DEADLINE threads of allocated containers hold.
func (s Deadline) allocatedUse() (int64, error) {
	claims, err := s.Cgroups.State.Claims()
	var corrupt *cgroupfix.CorruptError
	if err != nil && !errors.As(err, &corrupt) {
		return 0, err
	}
	var sum int64
	for _, c := range claims {
		if c.DLAllocation == 0 {
			continue
		}
		procs, _ := s.Cgroups.CPU.ReadFile(c.Leaf, "cgroup.procs")
		for _, f := range strings.Fields(procs) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			tids, _ := s.Procs.Threads(pid)
			for _, tid := range tids {
				if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy == unix.SCHED_DEADLINE && a.Period > 0 {
					sum += int64((a.Runtime << 20) / a.Period)
				}
			}
		}
	}
	return sum, nil
}

// Max is every online CPU's full second.
func (s Deadline) Max() int {
	b, err := s.Procs.ReadDeadlineBandwidth(s.SysRoot)
	if err != nil || b.CPUs < 1 {
		return secondUnits
	}
	return b.CPUs * secondUnits
}

// Check refuses more than one CPU's bandwidth for a container: a SCHED_DEADLINE task can hold
// at most one CPU, and rtshim sets one policy on the container's threads.
func (s Deadline) Check(n int64) error {
	if n > oci.UnitPeriodUS/oci.UnitUS {
		return fmt.Errorf("%s: %d units are more than one CPU (%d)", oci.ResourceDLBandwidth, n, oci.UnitPeriodUS/oci.UnitUS)
	}
	return nil
}
