package oci

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rules are the operator's say over requests: what a container gets for what it did not ask
// for, and what it may ask for. They come from the host config's [defaults] and [limits]
// tables (package config), whose key names the error messages use.
type Rules struct {
	Defaults Defaults `toml:"defaults"`
	Limits   Limits   `toml:"limits"`
}

// Defaults fill in what a container did not ask for.
type Defaults struct {
	Priority    int    `toml:"priority"`
	RTRuntimeUS int64  `toml:"rt_runtime_us"`
	RTPeriodUS  int64  `toml:"rt_period_us"`
	CPUQuota    string `toml:"cpu_quota"`
	ExecPolicy  string `toml:"exec_policy"`
	Mode        string `toml:"mode"`
}

// Limits bound what a container may ask for.
type Limits struct {
	AllowedPolicies []string `toml:"allowed_policies"`
	MaxPriority     int      `toml:"max_priority"`
	// MinNice is the most favourable nice value a SCHED_OTHER/BATCH container may ask for.
	MinNice int `toml:"min_nice"`
	// MaxRTRuntimeUS bounds one container's RT budget, MaxPodRTRuntimeUS the sum of a
	// Kubernetes pod's, both per defaults.rt_period_us.
	MaxRTRuntimeUS    int64 `toml:"max_rt_runtime_us"`
	MaxPodRTRuntimeUS int64 `toml:"max_pod_rt_runtime_us"`
	// MinRTRuntimeUS is the smallest RT budget a container may ask for; 0 means one scheduler
	// tick of the running kernel (TickUS), the smallest the kernel can enforce.
	MinRTRuntimeUS int64 `toml:"min_rt_runtime_us"`
	// AllowGrant permits grant mode (the program switches itself, within the limits).
	AllowGrant bool `toml:"allow_grant"`
	// RequireAllocation refuses a real-time container of a Kubernetes pod that holds no
	// rtshim.io/rt-bandwidth allocation, so that annotations cannot bypass the scheduler.
	RequireAllocation bool `toml:"require_allocation"`
	HonorAnnotations  bool `toml:"honor_annotations"`
	HonorEnv          bool `toml:"honor_env"`

	// Host tuning (rtshim.io/cpus and the knobs that act on a container's CPUs). Each changes
	// host-global settings for as long as the container runs, so nothing is allowed by default.
	// TunableCPUs is the CPU list a container may take or tune ("": none).
	TunableCPUs string `toml:"tunable_cpus"`
	// AllowExclusiveCPUs permits rtshim.io/cpus and cpu-load-balancing (a cpuset partition).
	AllowExclusiveCPUs bool `toml:"allow_exclusive_cpus"`
	// AllowIRQTuning permits irq-load-balancing (IRQ affinities and irqbalance's banned CPUs).
	AllowIRQTuning bool `toml:"allow_irq_tuning"`
	// AllowCStates permits cpu-c-states (each CPU's pm_qos_resume_latency_us).
	AllowCStates bool `toml:"allow_cstates"`
	// AllowedGovernors are the cpufreq governors cpu-freq-governor may set (empty: none).
	AllowedGovernors []string `toml:"allowed_governors"`

	// TickUS is one scheduler tick of the running kernel (1/CONFIG_HZ), filled in by the host
	// before requests are parsed; 0 when unknown (DefaultTickUS is assumed).
	TickUS int64 `toml:"-"`
}

// DefaultTickUS is the tick assumed when the kernel's CONFIG_HZ is unknown: HZ=250, the most
// common setting, so the assumed minimum budget is not smaller than the real one on most kernels.
const DefaultTickUS = 4000

// DefaultRules are the rules of a host without a config file.
func DefaultRules() Rules {
	return Rules{
		Defaults: Defaults{
			Priority:    50,
			RTRuntimeUS: 100000,
			RTPeriodUS:  1000000,
			CPUQuota:    string(QuotaDisable),
			ExecPolicy:  string(PolicyOther),
			Mode:        string(ModeApply),
		},
		// The defaults must not let one container (or one image) take the host: see the
		// reasoning in docs/design.md, "Limits and what bounds a container".
		Limits: Limits{
			AllowedPolicies:   []string{"SCHED_FIFO", "SCHED_RR", "SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_DEADLINE"},
			MaxPriority:       90,
			MinNice:           0,
			MaxRTRuntimeUS:    400000,
			MaxPodRTRuntimeUS: 400000,
			MinRTRuntimeUS:    0,
			AllowGrant:        true,
			HonorAnnotations:  true,
			HonorEnv:          false,
			AllowedGovernors:  []string{},
		},
	}
}

// Upper bounds from the kernel: sched_rt_period_us and a group's rt_runtime_us are at most 1s
// worth of microseconds per period as rtshim uses them (sched-rt-group.rst).
const maxRTPeriodUS = 1000000

// Check validates every value and normalises the names (policies to "SCHED_X", mode and
// cpu_quota to lower case). It returns every problem, each naming the config key, so that one
// round of fixes suffices.
func (r *Rules) Check() []string {
	var p problems
	d, l := &r.Defaults, &r.Limits
	if l.MaxPriority < MinRTPriority || l.MaxPriority > MaxRTPriority {
		p.add("limits.max_priority", fmt.Sprint(l.MaxPriority), "must be from 1 to 99")
	}
	if l.MaxRTRuntimeUS < 1 || l.MaxRTRuntimeUS > maxRTPeriodUS {
		p.add("limits.max_rt_runtime_us", fmt.Sprint(l.MaxRTRuntimeUS), "must be from 1 to 1000000")
	}
	if l.MaxPodRTRuntimeUS < 1 || l.MaxPodRTRuntimeUS > maxRTPeriodUS {
		p.add("limits.max_pod_rt_runtime_us", fmt.Sprint(l.MaxPodRTRuntimeUS), "must be from 1 to 1000000")
	}
	if l.MinRTRuntimeUS < 0 || l.MinRTRuntimeUS > l.MaxRTRuntimeUS {
		p.add("limits.min_rt_runtime_us", fmt.Sprint(l.MinRTRuntimeUS),
			fmt.Sprintf("must be 0 (one scheduler tick) or from 1 to limits.max_rt_runtime_us (%d)", l.MaxRTRuntimeUS))
	}
	if l.MinNice < MinNice || l.MinNice > MaxNice {
		p.add("limits.min_nice", fmt.Sprint(l.MinNice), fmt.Sprintf("must be from %d to %d", MinNice, MaxNice))
	}
	if d.Priority < MinRTPriority || d.Priority > min(MaxRTPriority, l.MaxPriority) {
		p.add("defaults.priority", fmt.Sprint(d.Priority), fmt.Sprintf("must be from 1 to 99 and at most limits.max_priority (%d)", l.MaxPriority))
	}
	if d.RTPeriodUS < 1 || d.RTPeriodUS > maxRTPeriodUS {
		p.add("defaults.rt_period_us", fmt.Sprint(d.RTPeriodUS), "must be from 1 to 1000000")
	}
	if d.RTRuntimeUS < 1 || d.RTRuntimeUS > d.RTPeriodUS || d.RTRuntimeUS > l.MaxRTRuntimeUS {
		p.add("defaults.rt_runtime_us", fmt.Sprint(d.RTRuntimeUS), fmt.Sprintf(
			"must be from 1 to defaults.rt_period_us (%d) and at most limits.max_rt_runtime_us (%d)", d.RTPeriodUS, l.MaxRTRuntimeUS))
	}
	if q, ok := parseQuota(d.CPUQuota); ok {
		d.CPUQuota = string(q)
	} else {
		p.add("defaults.cpu_quota", quote(d.CPUQuota), "must be disable or keep")
	}
	switch m, ok := parseMode(d.Mode); {
	case !ok:
		p.add("defaults.mode", quote(d.Mode), "must be apply or grant")
	case m == ModeGrant && !l.AllowGrant:
		p.add("defaults.mode", quote(d.Mode), "grant mode is not allowed (limits.allow_grant is false)")
	default:
		d.Mode = string(m)
	}
	switch e, ok := parsePolicy(d.ExecPolicy); {
	case !ok:
		p.add("defaults.exec_policy", quote(d.ExecPolicy), policyHelp())
	case e == PolicyDeadline:
		p.add("defaults.exec_policy", quote(d.ExecPolicy), "SCHED_DEADLINE needs per-process parameters; use another policy")
	default:
		d.ExecPolicy = string(e)
	}
	// An empty list is valid: no container may ask for any policy, nor bring its own
	// process.scheduler.
	allowed, bad := make([]string, 0, len(l.AllowedPolicies)), false
	for i, a := range l.AllowedPolicies {
		pol, ok := parsePolicy(a)
		if !ok {
			p.add(fmt.Sprintf("limits.allowed_policies[%d]", i), quote(a), policyHelp())
			bad = true
		} else if !slices.Contains(allowed, string(pol)) {
			allowed = append(allowed, string(pol))
		}
	}
	if !bad && l.AllowedPolicies != nil {
		l.AllowedPolicies = allowed
	}
	p = append(p, l.checkTuning()...)
	return p
}

// minRTRuntime is the smallest RT budget a container may ask for, with what it stands for.
func (l *Limits) minRTRuntime() (int64, string) {
	if l.MinRTRuntimeUS > 0 {
		return l.MinRTRuntimeUS, "limits.min_rt_runtime_us"
	}
	tick, known := l.TickUS, "this kernel's CONFIG_HZ"
	if tick <= 0 {
		tick, known = DefaultTickUS, "assumed: CONFIG_HZ unknown"
	}
	return tick, fmt.Sprintf("one scheduler tick, %s; a busy thread overruns its budget by up to a tick and repays "+
		"it a budget per period, unkillable meanwhile; limits.min_rt_runtime_us can allow less", known)
}

// maxTickUS is the longest scheduler tick Linux has (CONFIG_HZ=100).
const maxTickUS = 10000

// belowLeastError is a refusal of a budget below the smallest one allowed.
type belowLeastError struct{ error }

func (e belowLeastError) Unwrap() error { return e.error }

func belowLeast(err error) error { return belowLeastError{err} }

// NeedsTick reports whether what ParseRequest decided with an unknown tick (Limits.TickUS 0:
// DefaultTickUS assumed) could change with the running kernel's: a budget below the longest
// tick Linux has was admitted, or one was refused for being below the assumed one. Only then is
// the kernel config worth reading (a few hundred µs of gunzip), and the request parsed again.
func NeedsTick(rules *Rules, r *Request, err error) bool {
	if rules != nil && rules.Limits.MinRTRuntimeUS > 0 {
		return false // the operator's minimum, not the tick
	}
	var below belowLeastError
	if errors.As(err, &below) {
		return true
	}
	return err == nil && r != nil && r.NeedsBudget() && r.RTRuntimeUS < maxTickUS
}

// allowAll reports whether the limits allow everything CAP_SYS_NICE lets a program do itself:
// FIFO, RR and DEADLINE at any priority, any nice, a DEADLINE bandwidth up to the kernel's
// default RT share. Only then may grant mode hand a container CAP_SYS_NICE.
func (l *Limits) allowAll() bool {
	allowed := func(p Policy) bool { return slices.Contains(l.AllowedPolicies, string(p)) }
	return allowed(PolicyFIFO) && allowed(PolicyRR) && allowed(PolicyDeadline) && l.MaxPriority >= MaxRTPriority &&
		l.MinNice <= MinNice && l.MaxRTRuntimeUS >= kernelRTRuntimeUS && l.MaxPodRTRuntimeUS >= kernelRTRuntimeUS
}

// kernelRTRuntimeUS is the kernel's default RT share (sched_rt_runtime_us, per 1 s).
const kernelRTRuntimeUS = 950000

// validated returns a checked private copy of r, so that rules built by hand (or zero ones)
// fail with the config key to fix instead of producing odd requests, and r is not modified.
func (r Rules) validated() (Rules, error) {
	r.Limits.AllowedPolicies = slices.Clone(r.Limits.AllowedPolicies)
	r.Limits.AllowedGovernors = slices.Clone(r.Limits.AllowedGovernors)
	if problems := r.Check(); len(problems) > 0 {
		return r, invalidConfig(strings.Join(problems, "; "))
	}
	return r, nil
}

type problems []string

func (p *problems) add(key, value, allowed string) {
	*p = append(*p, fmt.Sprintf("%s=%s: %s", key, value, allowed))
}
