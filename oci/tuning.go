package oci

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/internal/cpulist"
)

// Keys of the host tuning a container may ask for: CPUs of its own and what keeps the kernel off
// them. They act on "the container's CPUs": rtshim.io/cpus, else linux.resources.cpu.cpus.
const (
	KeyCPUs             = Prefix + "cpus"
	KeyCPULoadBalancing = Prefix + "cpu-load-balancing"
	KeyIRQLoadBalancing = Prefix + "irq-load-balancing"
	KeyCPUCStates       = Prefix + "cpu-c-states"
	KeyCPUFreqGovernor  = Prefix + "cpu-freq-governor"

	// CPUsAssigned as rtshim.io/cpus takes linux.resources.cpu.cpus, the CPUs the engine gave the
	// container (in a Guaranteed pod under the kubelet's static CPU manager, the ones it assigned).
	CPUsAssigned = "assigned"
)

// tuningKeys are the keys that need no policy.
var tuningKeys = []string{KeyCPUs, KeyCPULoadBalancing, KeyIRQLoadBalancing, KeyCPUCStates, KeyCPUFreqGovernor}

// CRI-O's high-performance runtime handler annotations, accepted with CRI-O's values so a pod
// moves from CRI-O to containerd + rtshim unchanged. CRI-O also takes "<key>/<container-name>".
const (
	CRIOCPULoadBalancing = "cpu-load-balancing.crio.io"
	CRIOIRQLoadBalancing = "irq-load-balancing.crio.io"
	CRIOCPUCStates       = "cpu-c-states.crio.io"
	CRIOCPUFreqGovernor  = "cpu-freq-governor.crio.io"
	CRIOCPUQuota         = "cpu-quota.crio.io"
)

// crioAliases maps each CRI-O annotation to the rtshim key it stands for.
var crioAliases = map[string]string{
	CRIOCPULoadBalancing: KeyCPULoadBalancing,
	CRIOIRQLoadBalancing: KeyIRQLoadBalancing,
	CRIOCPUCStates:       KeyCPUCStates,
	CRIOCPUFreqGovernor:  KeyCPUFreqGovernor,
	CRIOCPUQuota:         KeyCPUQuota,
}

// IRQMode is what happens to the interrupts of the container's CPUs.
type IRQMode string

const (
	// IRQDisable moves every movable interrupt off the container's CPUs.
	IRQDisable IRQMode = "disable"
	// IRQHousekeeping keeps interrupts on the first of the container's CPUs and its hyper-thread
	// siblings (CRI-O's "housekeeping"): the container's own non-RT threads can take them there.
	IRQHousekeeping IRQMode = "housekeeping"
)

// Resume latencies for pm_qos_resume_latency_us, as the kernel spells them.
const (
	// LatencyAny: no constraint, every idle state allowed (cpu-c-states "enable").
	LatencyAny = "0"
	// LatencyNone: a latency of 0, no idle state but polling (cpu-c-states "disable").
	LatencyNone = "n/a"
)

// Tuning is the validated host tuning of one container. CPUs are what every knob acts on.
type Tuning struct {
	CPUs string `json:"cpus"`
	// Exclusive: the CPUs are the container's alone (rtshim.io/cpus, cpu-load-balancing): its
	// cgroup becomes a cpuset partition, and no other container may tune or take them.
	Exclusive bool `json:"exclusive,omitempty"`
	// NoLoadBalance: the partition is "isolated" (no load balancing between its CPUs) instead
	// of "root" (a root domain of its own, where SCHED_DEADLINE admits the container).
	NoLoadBalance bool    `json:"no_load_balance,omitempty"`
	IRQ           IRQMode `json:"irq,omitempty"`
	// ResumeLatency is each CPU's pm_qos_resume_latency_us: LatencyAny, LatencyNone or µs.
	ResumeLatency string `json:"resume_latency,omitempty"`
	Governor      string `json:"governor,omitempty"`
}

// Set is the tuning's CPUs (validated at parse time).
func (t *Tuning) Set() cpulist.Set {
	s, _ := cpulist.Parse(t.CPUs)
	return s
}

// String lists the knobs in a few words, for logs and rtshim status.
func (t *Tuning) String() string {
	if t == nil {
		return "-"
	}
	parts := []string{"cpus=" + t.CPUs}
	switch {
	case t.Exclusive && t.NoLoadBalance:
		parts = append(parts, "isolated")
	case t.Exclusive:
		parts = append(parts, "exclusive")
	}
	if t.IRQ != "" {
		parts = append(parts, "irqs="+string(t.IRQ))
	}
	if t.ResumeLatency != "" {
		parts = append(parts, "resume_latency="+t.ResumeLatency)
	}
	if t.Governor != "" {
		parts = append(parts, "governor="+t.Governor)
	}
	return strings.Join(parts, " ")
}

// checkTuning validates the tuning limits.
func (l *Limits) checkTuning() problems {
	var p problems
	if _, err := cpulist.Parse(l.TunableCPUs); err != nil {
		p.add("limits.tunable_cpus", quote(l.TunableCPUs), "must be a CPU list like \"2-3,6\" ("+err.Error()+")")
	}
	for i, g := range l.AllowedGovernors {
		if !governorName(g) {
			p.add(fmt.Sprintf("limits.allowed_governors[%d]", i), quote(g), "must be a cpufreq governor name (performance, schedutil, ...)")
		}
	}
	return p
}

// governorName reports whether g looks like a cpufreq governor: the kernel's names are short
// lower-case words; anything else would be written into sysfs as given.
func governorName(g string) bool {
	if g == "" || len(g) > 15 {
		return false
	}
	for _, c := range g {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// aliasValue translates a CRI-O value into rtshim's; ok is false for a value CRI-O would not
// act on either ("enable", "false": the knob stays as it is).
func aliasValue(canon, v string) (string, bool) {
	t, _ := oneOf(v, "true", "disable", "enable", "false", "housekeeping")
	switch canon {
	case KeyCPULoadBalancing:
		return "disable", t == "true" || t == "disable"
	case KeyIRQLoadBalancing:
		if t == "housekeeping" {
			return "housekeeping", true
		}
		return "disable", t == "true" || t == "disable"
	case KeyCPUQuota:
		return string(QuotaDisable), t == "true" || t == "disable"
	}
	return v, true // cpu-c-states and cpu-freq-governor take the same values
}

// gatherAliases reads CRI-O's annotations (and their "<key>/<container>" form) below the rtshim
// ones of the same level: an rtshim.io/ key wins over its alias.
func gatherAliases(set settings, ann map[string]string, container string) {
	for _, k := range sortedKeys(ann) {
		base, target, perContainer := strings.Cut(k, "/")
		canon, ok := crioAliases[base]
		if !ok || perContainer && (target == "" || target != container) {
			continue
		}
		v, act := aliasValue(canon, ann[k])
		if !act {
			continue
		}
		level := levelAliasPod
		if perContainer {
			level = levelAliasContainer
		}
		set.put(canon, setting{key: k, value: v, level: level, alias: true})
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// buildTuning validates the tuning keys against the limits and works out the container's CPUs.
// It returns nil when none is asked for. A pod moved from CRI-O whose annotations reach a
// container that does not own whole CPUs is left untuned, as CRI-O leaves it (skipped says why).
func buildTuning(set settings, spec *specs.Spec, rules *Rules) (t *Tuning, skipped string, err error) {
	asked := false
	onlyAliases := true
	for _, k := range tuningKeys {
		if v, ok := set[k]; ok {
			asked = true
			onlyAliases = onlyAliases && v.alias
		}
	}
	if !asked {
		return nil, "", nil
	}
	l := &rules.Limits
	t = &Tuning{}
	if v, ok := set[KeyCPULoadBalancing]; ok {
		m, ok := oneOf(v.value, "disable", "enable")
		if !ok {
			return nil, "", invalid(v.key, v.value, "must be disable or enable")
		}
		t.Exclusive, t.NoLoadBalance = m == "disable", m == "disable"
	}
	if v, ok := set[KeyIRQLoadBalancing]; ok {
		m, ok := oneOf(v.value, "disable", "housekeeping", "enable")
		if !ok {
			return nil, "", invalid(v.key, v.value, "must be disable, housekeeping or enable")
		}
		if m != "enable" {
			if !l.AllowIRQTuning {
				return nil, "", invalid(v.key, v.value, "IRQ tuning is not allowed on this host (limits.allow_irq_tuning is false)")
			}
			t.IRQ = IRQMode(m)
		}
	}
	if v, ok := set[KeyCPUCStates]; ok {
		lat, why := parseCStates(v.value)
		if why != "" {
			return nil, "", invalid(v.key, v.value, "%s", why)
		}
		if !l.AllowCStates {
			return nil, "", invalid(v.key, v.value, "C-state tuning is not allowed on this host (limits.allow_cstates is false)")
		}
		t.ResumeLatency = lat
	}
	if v, ok := set[KeyCPUFreqGovernor]; ok {
		g := trim(v.value)
		if !governorName(g) {
			return nil, "", invalid(v.key, v.value, "must be a cpufreq governor name (performance, schedutil, ...)")
		}
		if !slices.Contains(l.AllowedGovernors, g) {
			return nil, "", invalid(v.key, v.value, "governor %s is not allowed on this host (limits.allowed_governors is [%s])",
				g, strings.Join(l.AllowedGovernors, ", "))
		}
		t.Governor = g
	}
	cpus, err := tuningCPUs(t, set, spec, rules)
	if err != nil {
		var own *notOwnedError
		if onlyAliases && errors.As(err, &own) {
			return nil, own.Error(), nil
		}
		return nil, "", err
	}
	if cpus.Empty() {
		return nil, "", nil // only "enable" values: nothing to change
	}
	t.CPUs = cpus.String()
	if t.Exclusive && !l.AllowExclusiveCPUs {
		v := set[KeyCPUs]
		if v.key == "" {
			v = set[KeyCPULoadBalancing]
		}
		return nil, "", invalid(v.key, v.value, "exclusive CPUs are not allowed on this host (limits.allow_exclusive_cpus is false)")
	}
	if !t.Exclusive && t.IRQ == "" && t.ResumeLatency == "" && t.Governor == "" {
		return nil, "", nil
	}
	return t, "", nil
}

// tuningCPUs works out the container's CPUs: rtshim.io/cpus (a list, or "assigned"), else the
// spec's linux.resources.cpu.cpus. They must be within limits.tunable_cpus.
func tuningCPUs(t *Tuning, set settings, spec *specs.Spec, rules *Rules) (cpulist.Set, error) {
	specCPUs := ""
	if spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.CPU != nil {
		specCPUs = trim(spec.Linux.Resources.CPU.Cpus)
	}
	assigned, err := cpulist.Parse(specCPUs)
	if err != nil {
		return nil, invalid("linux.resources.cpu.cpus", specCPUs, "%v", err)
	}
	var cpus cpulist.Set
	key, value := "linux.resources.cpu.cpus", specCPUs
	v, asked := set[KeyCPUs]
	switch {
	case asked && strings.EqualFold(trim(v.value), CPUsAssigned):
		key, value = v.key, v.value
		if assigned.Empty() {
			return nil, invalid(v.key, v.value, "the container has no CPUs assigned (linux.resources.cpu.cpus is empty): "+
				"give it a CPU list, or run it where the engine pins it (the kubelet's static CPU manager, --cpuset-cpus)")
		}
		if err := ownsCPUs(spec, assigned, v.key); err != nil {
			return nil, err
		}
		cpus, t.Exclusive = assigned, true
	case asked:
		key, value = v.key, v.value
		if cpus, err = cpulist.Parse(v.value); err != nil || cpus.Empty() {
			why := "is empty"
			if err != nil {
				why = err.Error()
			}
			return nil, invalid(v.key, v.value, "must be a CPU list like \"2-3\" or %q (%s)", CPUsAssigned, why)
		}
		if !assigned.Empty() && !cpus.SubsetOf(assigned) {
			return nil, invalid(v.key, v.value, "CPUs %s are outside the container's cpuset %s (linux.resources.cpu.cpus), "+
				"which its engine chose", cpus.Minus(assigned), assigned)
		}
		t.Exclusive = true
	default:
		if assigned.Empty() {
			k := firstAsked(set)
			return nil, invalid(k.key, k.value, "acts on the container's CPUs, and it has none of its own: set %s "+
				"(a CPU list, or %q for the engine's cpuset), or pin the container (linux.resources.cpu.cpus)", k.peer(KeyCPUs), CPUsAssigned)
		}
		if t.Exclusive {
			if err := ownsCPUs(spec, assigned, firstAsked(set).key); err != nil {
				return nil, err
			}
		}
		cpus = assigned
	}
	tunable, _ := cpulist.Parse(rules.Limits.TunableCPUs) // validated
	if out := cpus.Minus(tunable); !out.Empty() {
		return nil, invalid(key, value, "CPUs %s may not be tuned on this host (limits.tunable_cpus is %q)", out, rules.Limits.TunableCPUs)
	}
	return cpus, nil
}

func firstAsked(set settings) setting {
	for _, k := range tuningKeys {
		if v, ok := set[k]; ok {
			return v
		}
	}
	return setting{}
}

// notOwnedError: the CPUs of a Kubernetes container are not its alone.
type notOwnedError struct{ msg string }

func (e *notOwnedError) Error() string { return errdefs.ErrInvalidArgument.Error() + ": " + e.msg }
func (e *notOwnedError) Unwrap() error { return errdefs.ErrInvalidArgument }

// ownsCPUs checks that a Kubernetes container owns the CPUs of its cpuset: under the kubelet's
// static CPU manager only a Guaranteed pod's container with an integer CPU request gets CPUs of
// its own (cpu.shares 1024 per CPU); every other container's cpuset is the shared pool, which
// taking or tuning would take from every other pod.
func ownsCPUs(spec *specs.Spec, cpus cpulist.Set, key string) error {
	if spec.Annotations[AnnotationContainerType] != "container" {
		return nil // ctr, Docker --cpuset-cpus: the engine's cpuset is the container's to use
	}
	cpu := spec.Linux.Resources.CPU
	var shares uint64
	if cpu.Shares != nil {
		shares = *cpu.Shares
	}
	if shares == uint64(len(cpus))*1024 {
		return nil
	}
	return &notOwnedError{msg: fmt.Sprintf("%s: container's CPUs %s are not its own: the kubelet assigns CPUs of their own only to a "+
		"container of a Guaranteed pod with an integer CPU request (its cpu.shares would be %d; it is %d, so %s is the shared pool)",
		showKey(key), cpus, len(cpus)*1024, shares, cpus)}
}

// parseCStates reads cpu-c-states: "enable" (all idle states), "disable" (none), or CRI-O's
// "max_latency:N" (idle states that wake within N µs). It returns the pm_qos value or why not.
func parseCStates(s string) (string, string) {
	if m, ok := oneOf(s, "enable", "disable"); ok {
		if m == "enable" {
			return LatencyAny, ""
		}
		return LatencyNone, ""
	}
	if n, ok := strings.CutPrefix(trim(s), "max_latency:"); ok {
		// The kernel takes a positive s32; 0 would mean "no constraint", the opposite.
		if v, err := strconv.ParseInt(n, 10, 32); err == nil && v > 0 {
			return strconv.FormatInt(v, 10), ""
		}
	}
	return "", "must be enable, disable or max_latency:<µs> (a positive number of microseconds)"
}

// WithCPUs pins the container to its tuning's CPUs (linux.resources.cpu.cpus), which runc writes
// to its cgroup's cpuset.cpus.
func WithCPUs(cpus string) func(*specs.Spec) {
	return func(spec *specs.Spec) {
		if spec != nil {
			cpu(spec).Cpus = cpus
		}
	}
}
