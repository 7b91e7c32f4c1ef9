package oci

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// KeySpecRTRuntime names the spec's own RT budget in errors, with the flag that sets it.
const KeySpecRTRuntime = "linux.resources.cpu.realtimeRuntime"

// specFlag is how users set KeySpecRTRuntime, for error messages.
const specFlag = " (docker run --cpu-rt-runtime)"

// specBudget is the spec's own cgroup v1 RT budget (linux.resources.cpu.realtimeRuntime/Period,
// what `docker run --cpu-rt-runtime/--cpu-rt-period` set), if any.
func specBudget(spec *specs.Spec) (runtime, period int64, ok bool) {
	if spec.Linux == nil || spec.Linux.Resources == nil || spec.Linux.Resources.CPU == nil {
		return 0, 0, false
	}
	cpu := spec.Linux.Resources.CPU
	if cpu.RealtimeRuntime == nil || *cpu.RealtimeRuntime == 0 {
		return 0, 0, false
	}
	period = maxRTPeriodUS // runc leaves the kernel's default, 1 s
	if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod > 0 {
		period = int64(min(*cpu.RealtimePeriod, uint64(maxRTPeriodUS)+1))
	}
	return *cpu.RealtimeRuntime, period, true
}

// applySpecBudget takes the spec's own RT budget as the request for one where no rtshim.io/
// key names a budget: Docker's `--cpu-rt-runtime=N --cap-add=sys_nice IMAGE chrt -f 80 app`
// asks for the budget and switches itself, and works without a daemon flag because rtshim grants
// the ancestors. A container that asks for no policy at all gets the budget and nothing else
// (BudgetOnly): its program sets its own policy, with the capabilities its engine gave it.
// The budget is bounded as any other.
func applySpecBudget(r *Request, spec *specs.Spec, set settings, rules *Rules) (*Request, error) {
	runtime, period, ok := specBudget(spec)
	if !ok {
		return r, nil
	}
	if _, asked := set[KeyRTRuntimeUS]; asked {
		return r, nil // rtshim.io/rt-runtime-us wins; rtshim writes it into the spec
	}
	if r == nil || !r.Sched.Policy.RealTime() {
		if _, policy := set[KeyPolicy]; policy || (r != nil && r.FromSpec) {
			return r, nil // a non-real-time policy asked for: runc reports the budget's conflict
		}
		if r == nil {
			r = &Request{CPUQuota: QuotaMode(rules.Defaults.CPUQuota), Exec: Sched{Policy: PolicyOther}}
		}
		r.Sched, r.Mode, r.Grant, r.BudgetOnly = Sched{Policy: PolicyOther}, ModeGrant, Grant{}, true
	}
	value := strconv.FormatInt(runtime, 10)
	limit := rules.Limits.MaxRTRuntimeUS * period / rules.Defaults.RTPeriodUS
	least, why := rules.Limits.minRTRuntime()
	switch {
	case runtime < 0 || runtime > period || period > maxRTPeriodUS:
		return nil, invalid(KeySpecRTRuntime, value, "must be from 1 to the RT period (%d µs, at most %d)%s", period, maxRTPeriodUS, specFlag)
	case runtime > limit:
		return nil, invalid(KeySpecRTRuntime, value, "above what a container may hold here: %d µs per %d µs (limits.max_rt_runtime_us %d per %d)%s",
			limit, period, rules.Limits.MaxRTRuntimeUS, rules.Defaults.RTPeriodUS, specFlag)
	case runtime < least:
		return nil, belowLeast(invalid(KeySpecRTRuntime, value, "below the smallest RT budget allowed here, %d µs (%s)%s", least, why, specFlag))
	}
	if d := r.Sched.Deadline; d != nil && deadlineBudgetUS(*d, period) > runtime {
		return nil, invalid(KeySpecRTRuntime, value, "too small for the SCHED_DEADLINE parameters, which need %d µs per %d µs%s",
			deadlineBudgetUS(*d, period), period, specFlag)
	}
	r.RTRuntimeUS, r.RTPeriodUS = runtime, period
	return r, nil
}
