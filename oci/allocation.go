package oci

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RT bandwidth as a Kubernetes extended resource (rtshim device-plugin): the kubelet passes a
// container's allocation to the runtime as the container annotation KeyAllocation.
const (
	// ResourceRTBandwidth is the extended resource a pod requests: resources.limits
	// {rtshim.io/rt-bandwidth: N}.
	ResourceRTBandwidth = "rtshim.io/rt-bandwidth"
	// UnitUS is one unit of it: 1000 µs of RT runtime per UnitPeriodUS, 1 ms per second.
	UnitUS       = 1000
	UnitPeriodUS = 1000000
	// KeyAllocation carries a container's allocation in units. It is outside rtshim.io/ on
	// purpose: CRI copies it into the spec only through the runtime's container_annotations,
	// which only the kubelet (its device plugins) sets, never through pod_annotations, so a pod
	// cannot forge one.
	KeyAllocation = "allocation.rtshim.io/rt-bandwidth"
)

// BandwidthUnits is how many whole units usPerSecond (µs of RT runtime per UnitPeriodUS) holds,
// at most a full second's worth: a node's allocatable rtshim.io/rt-bandwidth.
func BandwidthUnits(usPerSecond int64) int64 {
	return min(max(usPerSecond, 0)/UnitUS, UnitPeriodUS/UnitUS)
}

// AllocationBudgetUS is what n units are per periodUS.
func AllocationBudgetUS(n, periodUS int64) int64 { return n * UnitUS * periodUS / UnitPeriodUS }

// applyAllocation makes the budget of a real-time container that holds an allocation exactly
// that allocation (what the scheduler counted), refuses one that asks for more, and, with
// limits.require_allocation, refuses a real-time container of a Kubernetes pod that holds none.
func applyAllocation(r *Request, spec *specs.Spec, set settings, rules *Rules) error {
	if !r.NeedsBudget() {
		return nil
	}
	v, allocated := spec.Annotations[KeyAllocation]
	if !allocated {
		if rules.Limits.RequireAllocation && spec.Annotations[AnnotationContainerType] == "container" {
			return invalid(KeyPolicy, string(r.Sched.Policy), "a real-time container in a Kubernetes pod needs an allocation of %s on this node "+
				"(limits.require_allocation is true): add resources.limits {%s: N} to the container, N its RT budget in ms per second "+
				"(%d for %d µs per %d µs)", ResourceRTBandwidth, ResourceRTBandwidth,
				(r.RTRuntimeUS*UnitPeriodUS/r.RTPeriodUS+UnitUS-1)/UnitUS, r.RTRuntimeUS, r.RTPeriodUS)
		}
		return nil
	}
	n, err := strconv.ParseInt(trim(v), 10, 64)
	if err != nil || n < 1 || n > UnitPeriodUS/UnitUS {
		return invalid(KeyAllocation, v, "must be a number of %s units from 1 to %d", ResourceRTBandwidth, UnitPeriodUS/UnitUS)
	}
	budget := AllocationBudgetUS(n, r.RTPeriodUS)
	rt, asked := set[KeyRTRuntimeUS]
	if _, _, fromSpec := specBudget(spec); fromSpec && !asked {
		rt, asked = setting{key: KeySpecRTRuntime, value: strconv.FormatInt(r.RTRuntimeUS, 10)}, true
	}
	if asked && r.RTRuntimeUS > budget {
		return invalid(rt.key, rt.value, "asks %d µs per %d µs, above the container's allocation of %s: %d (%d µs per %d µs)",
			r.RTRuntimeUS, r.RTPeriodUS, ResourceRTBandwidth, n, budget, r.RTPeriodUS)
	}
	if r.Sched.Deadline != nil && deadlineBudgetUS(*r.Sched.Deadline, r.RTPeriodUS) > budget {
		return invalid(KeyAllocation, v, "%s: %d (%d µs per %d µs) is less than the SCHED_DEADLINE bandwidth needs, %d µs",
			ResourceRTBandwidth, n, budget, r.RTPeriodUS, deadlineBudgetUS(*r.Sched.Deadline, r.RTPeriodUS))
	}
	if err := CheckAllocation(n, r.RTPeriodUS, rules); err != nil {
		return err
	}
	r.RTRuntimeUS, r.AllocatedUS = budget, budget
	return nil
}

// CheckAllocation refuses an allocation of n units that no container could hold under rules,
// whatever it asks for: a budget per periodUS below the smallest RT budget allowed (one
// scheduler tick, or limits.min_rt_runtime_us) or above limits.max_rt_runtime_us. The shim
// applies it to every allocation it is given; rtshim device-plugin applies it in Allocate, so
// that such a pod fails admission with the reason instead of looping in CrashLoopBackOff.
func CheckAllocation(n, periodUS int64, rules *Rules) error {
	v := strconv.FormatInt(n, 10)
	if n < 1 || n > UnitPeriodUS/UnitUS {
		return invalid(KeyAllocation, v, "must be a number of %s units from 1 to %d", ResourceRTBandwidth, UnitPeriodUS/UnitUS)
	}
	budget := AllocationBudgetUS(n, periodUS)
	least, why := rules.Limits.minRTRuntime()
	switch {
	case budget < least:
		return belowLeast(invalid(KeyAllocation, v, "%s: %d is %d µs per %d µs, below the smallest RT budget allowed here, %d µs (%s)",
			ResourceRTBandwidth, n, budget, periodUS, least, why))
	case budget > rules.Limits.MaxRTRuntimeUS:
		return invalid(KeyAllocation, v, "%s: %d is %d µs per %d µs, above limits.max_rt_runtime_us (%d)",
			ResourceRTBandwidth, n, budget, periodUS, rules.Limits.MaxRTRuntimeUS)
	}
	return nil
}

// SCHED_DEADLINE bandwidth as a Kubernetes extended resource, for cgroup v2 nodes (no RT
// budgets there; the kernel admits DEADLINE bandwidth per root domain).
const (
	// ResourceDLBandwidth is requested like ResourceRTBandwidth: 1 unit is 1 ms of
	// SCHED_DEADLINE runtime per second.
	ResourceDLBandwidth = "rtshim.io/dl-bandwidth"
	// KeyDLAllocation carries a container's allocation of it, as KeyAllocation does.
	KeyDLAllocation = "allocation.rtshim.io/dl-bandwidth"
)

// DeadlineUnits is how many ResourceDLBandwidth units SCHED_DEADLINE parameters d need:
// runtime/period in ms per second, rounded up.
func DeadlineUnits(d Deadline) int64 {
	return deadlineBudgetUS(d, UnitPeriodUS/UnitUS) // ceil(runtime/period × 1000)
}

// CheckDeadlineAllocation is the cgroup v2 node's rule for a SCHED_DEADLINE container of a
// Kubernetes pod: its allocation of ResourceDLBandwidth must cover runtime/period (required
// when limits.require_allocation is true). It returns the allocated units (0: none).
func CheckDeadlineAllocation(r *Request, spec *specs.Spec, rules *Rules) (int64, error) {
	if r == nil || r.Sched.Deadline == nil || spec.Annotations[AnnotationContainerType] != "container" {
		return 0, nil
	}
	need := DeadlineUnits(*r.Sched.Deadline)
	v, ok := spec.Annotations[KeyDLAllocation]
	if !ok {
		if rules.Limits.RequireAllocation {
			return 0, invalid(KeyPolicy, string(r.Sched.Policy), "a SCHED_DEADLINE container in a Kubernetes pod needs an allocation of %s "+
				"on this node (limits.require_allocation is true): add resources.limits {%s: %d} to the container (its runtime/period "+
				"in ms per second)", ResourceDLBandwidth, ResourceDLBandwidth, need)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(trim(v), 10, 64)
	if err != nil || n < 1 {
		return 0, invalid(KeyDLAllocation, v, "must be a positive number of %s units", ResourceDLBandwidth)
	}
	if n < need {
		return 0, invalid(KeyDLAllocation, v, "%s: %d does not cover the SCHED_DEADLINE parameters, which need %d (runtime %v per period %v)",
			ResourceDLBandwidth, n, need, r.Sched.Deadline.Runtime, r.Sched.Deadline.Period)
	}
	return n, nil
}
