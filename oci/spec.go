package oci

import (
	"math"
	"slices"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CapSysNice is the capability that lets a process raise its own scheduling policy.
const CapSysNice = "CAP_SYS_NICE"

// SpecScheduler converts s to the OCI process.scheduler form (durations in nanoseconds).
func SpecScheduler(s Sched) *specs.Scheduler {
	out := &specs.Scheduler{
		Policy:   specs.LinuxSchedulerPolicy(s.Policy),
		Nice:     int32(s.Nice),
		Priority: int32(s.Priority),
	}
	if s.ResetOnFork {
		out.Flags = []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}
	}
	if s.Deadline != nil {
		out.Runtime = nanos(s.Deadline.Runtime)
		out.Deadline = nanos(s.Deadline.Deadline)
		out.Period = nanos(s.Deadline.Period)
	}
	return out
}

// nanos keeps a negative duration (impossible after parsing) from wrapping to a huge uint64.
func nanos(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d)
}

// ParseSpecScheduler checks an OCI process.scheduler against the kernel's rules and converts it.
// A nil scheduler is the kernel default, SCHED_OTHER at nice 0. A missing period means the
// deadline, as in sched_setattr(2). Flags other than SCHED_FLAG_RESET_ON_FORK are refused:
// rtshim rewrites process.scheduler from a Sched, which would silently drop them.
func ParseSpecScheduler(s *specs.Scheduler) (Sched, error) {
	if s == nil {
		return Sched{Policy: PolicyOther}, nil
	}
	p, ok := parsePolicy(string(s.Policy))
	if !ok {
		return Sched{}, invalid("process.scheduler.policy", string(s.Policy), "%s", policyHelp())
	}
	out := Sched{Policy: p, Priority: int(s.Priority), Nice: int(s.Nice)}
	prio := strconv.FormatInt(int64(s.Priority), 10)
	switch {
	case (p == PolicyFIFO || p == PolicyRR) && (s.Priority < MinRTPriority || s.Priority > MaxRTPriority):
		return Sched{}, invalid("process.scheduler.priority", prio, "%s needs a priority from %d to %d", p, MinRTPriority, MaxRTPriority)
	case p != PolicyFIFO && p != PolicyRR && s.Priority != 0:
		return Sched{}, invalid("process.scheduler.priority", prio, "must be 0 for %s: only SCHED_FIFO and SCHED_RR take a priority", p)
	}
	nice := strconv.FormatInt(int64(s.Nice), 10)
	switch {
	case (p == PolicyOther || p == PolicyBatch) && (s.Nice < MinNice || s.Nice > MaxNice):
		return Sched{}, invalid("process.scheduler.nice", nice, "must be from %d to %d", MinNice, MaxNice)
	case p != PolicyOther && p != PolicyBatch && s.Nice != 0:
		return Sched{}, invalid("process.scheduler.nice", nice, "must be 0 for %s: only SCHED_OTHER and SCHED_BATCH take a nice value", p)
	}
	for _, f := range s.Flags {
		if f != specs.SchedFlagResetOnFork {
			return Sched{}, invalid("process.scheduler.flags", string(f), "only %s is supported", specs.SchedFlagResetOnFork)
		}
		out.ResetOnFork = true
	}
	d, err := specDeadline(s, p)
	if err != nil {
		return Sched{}, err
	}
	out.Deadline = d
	return out, nil
}

func specDeadline(s *specs.Scheduler, p Policy) (*Deadline, error) {
	if p != PolicyDeadline {
		for _, f := range []struct {
			name string
			v    uint64
		}{{"runtime", s.Runtime}, {"deadline", s.Deadline}, {"period", s.Period}} {
			if f.v != 0 {
				return nil, invalid("process.scheduler."+f.name, strconv.FormatUint(f.v, 10), "must be 0 for %s: only SCHED_DEADLINE takes it", p)
			}
		}
		return nil, nil
	}
	period := s.Period
	if period == 0 {
		period = s.Deadline
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{{"runtime", s.Runtime}, {"deadline", s.Deadline}, {"period", period}} {
		if f.v == 0 || f.v > math.MaxInt64 {
			return nil, invalid("process.scheduler."+f.name, strconv.FormatUint(f.v, 10), "SCHED_DEADLINE needs it in nanoseconds, from 1 to %d", int64(math.MaxInt64))
		}
	}
	d := Deadline{Runtime: time.Duration(s.Runtime), Deadline: time.Duration(s.Deadline), Period: time.Duration(period)}
	if reason := checkDeadline(d); reason != "" {
		return nil, invalid("process.scheduler.runtime", strconv.FormatUint(s.Runtime, 10), "%s", reason)
	}
	return &d, nil
}

// WithScheduler sets process.scheduler, so runc (>= 1.2) applies the policy inside runc init,
// before the program's first instruction.
func WithScheduler(s Sched) func(*specs.Spec) {
	return func(spec *specs.Spec) {
		if spec == nil {
			return
		}
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		spec.Process.Scheduler = SpecScheduler(s)
	}
}

// WithoutScheduler removes process.scheduler (grant mode: the program switches itself).
func WithoutScheduler(spec *specs.Spec) {
	if spec != nil && spec.Process != nil {
		spec.Process.Scheduler = nil
	}
}

// WithCapability adds c to every capability set that lacks it. Ambient (and so inheritable
// and permitted) matters: without it a non-root program loses c at execve.
func WithCapability(c string) func(*specs.Spec) {
	return func(spec *specs.Spec) {
		if spec == nil {
			return
		}
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		if spec.Process.Capabilities == nil {
			spec.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		caps := spec.Process.Capabilities
		for _, set := range []*[]string{&caps.Bounding, &caps.Effective, &caps.Permitted, &caps.Inheritable, &caps.Ambient} {
			if !slices.Contains(*set, c) {
				*set = append(*set, c)
			}
		}
	}
}

// RlimitRTPrio is the rlimit that lets an unprivileged process choose SCHED_FIFO or SCHED_RR up
// to its value (sched(7)).
const RlimitRTPrio = "RLIMIT_RTPRIO"

// WithRlimit sets the process's rlimit typ to n (soft and hard), replacing any the spec had: a
// granted program must not keep a higher one from the engine's defaults.
func WithRlimit(typ string, n uint64) func(*specs.Spec) {
	return func(spec *specs.Spec) {
		if spec == nil {
			return
		}
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		spec.Process.Rlimits = slices.DeleteFunc(spec.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == typ })
		spec.Process.Rlimits = append(spec.Process.Rlimits, specs.POSIXRlimit{Type: typ, Hard: n, Soft: n})
	}
}

// cpu returns linux.resources.cpu, created if missing.
func cpu(spec *specs.Spec) *specs.LinuxCPU {
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	if spec.Linux.Resources.CPU == nil {
		spec.Linux.Resources.CPU = &specs.LinuxCPU{}
	}
	return spec.Linux.Resources.CPU
}

// WithRTBudget sets the container cgroup's own cgroup v1 RT budget, which runc writes before
// moving the process in. runc ignores it on cgroup v2, and never budgets the ancestors: that
// is the shim's job.
func WithRTBudget(runtimeUS, periodUS int64) func(*specs.Spec) {
	return func(spec *specs.Spec) {
		if spec == nil {
			return
		}
		c := cpu(spec)
		rt, p := runtimeUS, uint64(max(periodUS, 0))
		c.RealtimeRuntime, c.RealtimePeriod = &rt, &p
	}
}

// WithoutCPUQuota drops the container's CFS quota: runc then leaves the new cgroup unlimited,
// so the RT program's own SCHED_OTHER threads are not throttled.
func WithoutCPUQuota(spec *specs.Spec) {
	if spec != nil && spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.CPU != nil {
		spec.Linux.Resources.CPU.Quota = nil
	}
}

// Apply runs opts on spec in order.
func Apply(spec *specs.Spec, opts ...func(*specs.Spec)) {
	if spec == nil {
		return
	}
	for _, o := range opts {
		o(spec)
	}
}

// PrepareSpec rewrites the container's spec for r before runc create. cgroupV1Budget says
// the host uses cgroup v1 RT group scheduling, where the leaf needs its own budget.
func PrepareSpec(spec *specs.Spec, r *Request, cgroupV1Budget bool) {
	if spec == nil || r == nil {
		return
	}
	opts := []func(*specs.Spec){}
	switch {
	case r.Mode == ModeGrant && r.Grant.CapSysNice:
		opts = append(opts, WithoutScheduler, WithCapability(CapSysNice))
	case r.Mode == ModeGrant && r.Grant.RTPrio > 0:
		opts = append(opts, WithoutScheduler, WithRlimit(RlimitRTPrio, uint64(r.Grant.RTPrio)))
	case r.Mode == ModeGrant:
		opts = append(opts, WithoutScheduler) // nothing to grant but the budget
	default:
		opts = append(opts, WithScheduler(r.Sched))
	}
	if r.NeedsBudget() && cgroupV1Budget {
		opts = append(opts, WithRTBudget(r.RTRuntimeUS, r.RTPeriodUS))
	}
	if r.ExemptQuota() {
		opts = append(opts, WithoutCPUQuota)
	}
	Apply(spec, opts...)
}

// ExecProcess sets the scheduler of a process exec'd into the container, always explicitly:
// runc >= 1.3 otherwise gives it config.json's scheduler, i.e. the container's RT policy.
// A scheduler the exec client set itself is replaced too: exec-policy is the only way in.
func ExecProcess(p *specs.Process, r *Request) {
	if p == nil || r == nil {
		return
	}
	s := r.Exec
	if s.Policy == "" {
		s = Sched{Policy: PolicyOther}
	}
	p.Scheduler = SpecScheduler(s)
}

// UpdateResources adjusts an Update request (docker update, kubelet in-place resize) so it
// cannot undo the container's exemptions: a new quota becomes -1 (unlimited), and RT budget
// fields are dropped because the shim owns the budgets along the whole cgroup path.
func UpdateResources(res *specs.LinuxResources, r *Request) {
	if res == nil || res.CPU == nil || r == nil {
		return
	}
	if r.ExemptQuota() && res.CPU.Quota != nil {
		unlimited := int64(-1)
		res.CPU.Quota = &unlimited
	}
	if r.NeedsBudget() {
		res.CPU.RealtimeRuntime, res.CPU.RealtimePeriod = nil, nil
	}
}
