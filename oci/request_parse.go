package oci

import (
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// schedKeys are the parameters of the container's own policy. Without a policy they mean
// nothing, so giving one alone is an error rather than a silently ignored setting.
var schedKeys = []string{KeyPriority, KeyNice, KeyDeadline, KeyResetOnFork}

// policyKeys need a policy from some source: the sched parameters, and the mode and budget,
// which only make sense for a policy.
var policyKeys = []string{KeyPriority, KeyNice, KeyDeadline, KeyResetOnFork, KeyMode, KeyRTRuntimeUS}

// build turns the gathered settings (or the spec's scheduler) into a Request. rules is validated.
func build(set settings, fromSpec *specs.Scheduler, rules *Rules) (*Request, error) {
	r := &Request{CPUQuota: QuotaMode(rules.Defaults.CPUQuota), Mode: Mode(rules.Defaults.Mode)}
	// budgetKey/budgetValue name what a budget error should point at for SCHED_DEADLINE.
	var budgetKey, budgetValue string
	pol, asked := set[KeyPolicy]
	switch {
	case asked:
		s, err := schedFromSettings(set, pol, rules)
		if err != nil {
			return nil, err
		}
		r.Sched = s
		if d, ok := set[KeyDeadline]; ok {
			budgetKey, budgetValue = d.key, d.value
		}
	case fromSpec != nil:
		for _, k := range schedKeys {
			if v, ok := set[k]; ok {
				return nil, invalid(v.key, v.value, "needs %s: the spec's process.scheduler is taken as a whole and not combined with %s",
					v.peer(KeyPolicy), v.key)
			}
		}
		s, err := schedFromSpec(fromSpec, rules)
		if err != nil {
			return nil, &SpecError{err}
		}
		r.Sched, r.FromSpec = s, true
		budgetKey, budgetValue = "process.scheduler.runtime", strconv.FormatUint(fromSpec.Runtime, 10)
	default:
		for _, k := range policyKeys {
			if v, ok := set[k]; ok {
				return nil, invalid(v.key, v.value, "needs %s", v.peer(KeyPolicy))
			}
		}
		// Only cpu-quota or exec-policy: nothing was asked for the container itself, so it is
		// not given anything either (no CAP_SYS_NICE even if the default mode is grant).
		r.Sched = Sched{Policy: PolicyOther}
		r.Mode = ModeApply
	}
	modeKey, modeValue := "defaults.mode", rules.Defaults.Mode
	if v, ok := set[KeyMode]; ok {
		m, ok := parseMode(v.value)
		if !ok {
			return nil, invalid(v.key, v.value, "must be %s or %s", ModeApply, ModeGrant)
		}
		r.Mode, modeKey, modeValue = m, v.key, v.value
	}
	if r.Mode == ModeGrant {
		g, err := grantBound(r.Sched, rules, modeKey, modeValue)
		if err != nil {
			return nil, err
		}
		r.Grant = g
	}
	if v, ok := set[KeyResetOnFork]; ok && r.Mode == ModeGrant && r.Sched.ResetOnFork {
		// In grant mode the program sets its own policy, flags included: a flag the runtime
		// never applies would be silently ignored.
		return nil, invalid(v.key, v.value, "has no effect in %s mode, where the program sets its own policy "+
			"(it can pass SCHED_FLAG_RESET_ON_FORK to sched_setattr itself)", ModeGrant)
	}
	if err := setBudget(r, set, rules, budgetKey, budgetValue); err != nil {
		return nil, err
	}
	if v, ok := set[KeyCPUQuota]; ok {
		q, ok := parseQuota(v.value)
		if !ok {
			return nil, invalid(v.key, v.value, "must be %s or %s", QuotaDisable, QuotaKeep)
		}
		r.CPUQuota = q
		r.ExemptAlways = v.alias && q == QuotaDisable
	}
	exec, err := execSched(set, r.Sched.Policy, rules)
	if err != nil {
		return nil, err
	}
	r.Exec = exec
	return r, nil
}

// schedFromSettings reads the policy and its parameters from annotations/environment.
func schedFromSettings(set settings, pol setting, rules *Rules) (Sched, error) {
	p, ok := parsePolicy(pol.value)
	if !ok {
		return Sched{}, invalid(pol.key, pol.value, "%s", policyHelp())
	}
	if err := checkAllowed(pol.key, pol.value, p, rules); err != nil {
		return Sched{}, err
	}
	s := Sched{Policy: p}
	if v, ok := set[KeyPriority]; ok {
		if p != PolicyFIFO && p != PolicyRR {
			return Sched{}, invalid(v.key, v.value, "only SCHED_FIFO and SCHED_RR take a priority, not %s%s", p, niceHint(p, v))
		}
		n, ok := parseInt(v.value, MinRTPriority, maxPriority(rules))
		if !ok {
			return Sched{}, priorityError(v.key, v.value, rules)
		}
		s.Priority = int(n)
	} else if p == PolicyFIFO || p == PolicyRR {
		s.Priority = rules.Defaults.Priority
	}
	if v, ok := set[KeyNice]; ok {
		if p != PolicyOther && p != PolicyBatch {
			return Sched{}, invalid(v.key, v.value, "only SCHED_OTHER and SCHED_BATCH take a nice value, not %s", p)
		}
		n, ok := parseInt(v.value, int64(rules.Limits.MinNice), MaxNice)
		if !ok {
			return Sched{}, niceError(v.key, v.value, rules)
		}
		s.Nice = int(n)
	}
	v, ok := set[KeyDeadline]
	switch {
	case ok && p != PolicyDeadline:
		return Sched{}, invalid(v.key, v.value, "only SCHED_DEADLINE takes deadline parameters, not %s", p)
	case ok:
		d, reason := parseDeadline(v.value)
		if reason != "" {
			return Sched{}, invalid(v.key, v.value, "%s", reason)
		}
		s.Deadline = &d
	case p == PolicyDeadline:
		return Sched{}, invalid(pol.key, pol.value, "SCHED_DEADLINE needs %s: %s", pol.peer(KeyDeadline), deadlineForm)
	}
	if v, ok := set[KeyResetOnFork]; ok {
		b, ok := parseBool(v.value)
		if !ok {
			return Sched{}, invalid(v.key, v.value, "must be true or false")
		}
		s.ResetOnFork = b
	}
	return s, nil
}

func niceHint(p Policy, v setting) string {
	if p == PolicyOther || p == PolicyBatch {
		return " (use " + v.peer(KeyNice) + ")"
	}
	return ""
}

// schedFromSpec honours a process.scheduler already in the spec (set by NRI, podman, or by hand)
// under the same host limits as an annotation.
func schedFromSpec(ss *specs.Scheduler, rules *Rules) (Sched, error) {
	s, err := ParseSpecScheduler(ss)
	if err != nil {
		return Sched{}, err
	}
	if err := checkAllowed("process.scheduler.policy", string(ss.Policy), s.Policy, rules); err != nil {
		return Sched{}, err
	}
	if int64(s.Priority) > maxPriority(rules) {
		return Sched{}, priorityError("process.scheduler.priority", strconv.Itoa(s.Priority), rules)
	}
	if s.Nice < rules.Limits.MinNice {
		return Sched{}, niceError("process.scheduler.nice", strconv.Itoa(s.Nice), rules)
	}
	return s, nil
}

// setBudget fills in the cgroup v1 RT budget of a real-time request.
func setBudget(r *Request, set settings, rules *Rules, dlKey, dlValue string) error {
	v, asked := set[KeyRTRuntimeUS]
	if !r.Sched.Policy.RealTime() {
		if asked {
			return invalid(v.key, v.value, "only real-time policies (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE) take an RT budget, not %s", r.Sched.Policy)
		}
		return nil
	}
	period, limit := rules.Defaults.RTPeriodUS, rules.Limits.MaxRTRuntimeUS
	least, why := rules.Limits.minRTRuntime()
	r.RTPeriodUS, r.RTRuntimeUS = period, rules.Defaults.RTRuntimeUS
	if asked {
		n, err := strconv.ParseInt(trim(v.value), 10, 64)
		switch {
		case err != nil || n < 1 || n > min(period, limit):
			return invalid(v.key, v.value, "must be an integer from %d to %d microseconds (defaults.rt_period_us is %d, limits.max_rt_runtime_us is %d)",
				least, min(period, limit), period, limit)
		case n < least:
			return belowLeast(invalid(v.key, v.value, "below the smallest RT budget allowed here, %d microseconds (%s)", least, why))
		}
		r.RTRuntimeUS = n
	}
	if r.Sched.Deadline == nil {
		if r.RTRuntimeUS < least {
			return belowLeast(invalid("defaults.rt_runtime_us", strconv.FormatInt(r.RTRuntimeUS, 10),
				"below the smallest RT budget allowed here, %d microseconds (%s): raise the config's default", least, why))
		}
		return nil
	}
	// A DEADLINE task's bandwidth runtime/period must fit in its group's RT budget, or the
	// group cannot hold it. The default budget grows to fit; an explicit one must already.
	need := max(deadlineBudgetUS(*r.Sched.Deadline, period), least)
	switch {
	case need <= r.RTRuntimeUS:
	case asked:
		return invalid(v.key, v.value, "too small for %s=%s, which needs at least %d microseconds per %d",
			showKey(dlKey), quote(dlValue), need, period)
	case need > limit:
		return invalid(dlKey, dlValue, "needs an RT budget of %d microseconds per %d, above limits.max_rt_runtime_us (%d)",
			need, period, limit)
	default:
		r.RTRuntimeUS = need
	}
	return nil
}

// execSched works out the policy of processes exec'd into the container (kubectl exec,
// docker exec, probes). Without a real-time container policy there is no RT budget in the
// container's cgroup, so a real-time exec policy is refused when asked for and dropped to
// SCHED_OTHER when it is only the operator's default.
func execSched(set settings, main Policy, rules *Rules) (Sched, error) {
	v, asked := set[KeyExecPolicy]
	if !asked {
		p, _ := parsePolicy(rules.Defaults.ExecPolicy) // validated
		if p.RealTime() && !main.RealTime() {
			p = PolicyOther
		}
		return execWithPriority(p, rules), nil
	}
	p, ok := parsePolicy(v.value)
	switch {
	case !ok:
		return Sched{}, invalid(v.key, v.value, "%s", policyHelp())
	case p == PolicyDeadline:
		return Sched{}, invalid(v.key, v.value, "SCHED_DEADLINE cannot be an exec policy: it needs per-process parameters; use SCHED_FIFO or SCHED_RR")
	case p.RealTime() && !main.RealTime():
		return Sched{}, invalid(v.key, v.value, "a real-time exec policy needs a real-time %s (the container gets no RT budget otherwise)", v.peer(KeyPolicy))
	}
	if err := checkAllowed(v.key, v.value, p, rules); err != nil {
		return Sched{}, err
	}
	return execWithPriority(p, rules), nil
}

func execWithPriority(p Policy, rules *Rules) Sched {
	s := Sched{Policy: p}
	if p == PolicyFIFO || p == PolicyRR {
		s.Priority = rules.Defaults.Priority
	}
	return s
}

func checkAllowed(key, value string, p Policy, rules *Rules) error {
	for _, a := range rules.Limits.AllowedPolicies {
		if q, ok := parsePolicy(a); ok && q == p {
			return nil
		}
	}
	allowed := "empty"
	if len(rules.Limits.AllowedPolicies) > 0 {
		allowed = "[" + strings.Join(rules.Limits.AllowedPolicies, ", ") + "]"
	}
	return invalid(key, value, "%s is not allowed on this host (limits.allowed_policies is %s)", p, allowed)
}

func niceError(key, value string, rules *Rules) error {
	return invalid(key, value, "must be an integer from %d to %d (limits.min_nice is %d)",
		rules.Limits.MinNice, MaxNice, rules.Limits.MinNice)
}

// grantBound works out what a grant-mode program may do itself, or refuses grant mode where
// the kernel cannot hold the program to the limits.
func grantBound(s Sched, rules *Rules, key, value string) (Grant, error) {
	l := &rules.Limits
	switch {
	case !l.AllowGrant:
		return Grant{}, invalid(key, value, "grant mode is not allowed on this host (limits.allow_grant is false); use %s mode", ModeApply)
	case l.allowAll():
		return Grant{CapSysNice: true}, nil
	case s.Policy == PolicyDeadline:
		return Grant{}, invalid(key, value, "a granted program could only set SCHED_DEADLINE with CAP_SYS_NICE, which would also let it "+
			"exceed this host's limits (CAP_SYS_NICE allows any priority and bandwidth); use %s mode", ModeApply)
	case s.Policy != PolicyFIFO && s.Policy != PolicyRR:
		return Grant{}, nil // nothing real-time to grant: the program starts unchanged
	case !slices.Contains(l.AllowedPolicies, string(PolicyFIFO)) || !slices.Contains(l.AllowedPolicies, string(PolicyRR)):
		return Grant{}, invalid(key, value, "a granted program is bounded by RLIMIT_RTPRIO, which allows SCHED_FIFO and SCHED_RR alike, "+
			"but limits.allowed_policies has only one of them; use %s mode", ModeApply)
	}
	return Grant{RTPrio: s.Priority}, nil
}

func maxPriority(rules *Rules) int64 { return int64(min(MaxRTPriority, rules.Limits.MaxPriority)) }

func priorityError(key, value string, rules *Rules) error {
	return invalid(key, value, "must be an integer from %d to %d (limits.max_priority is %d)",
		MinRTPriority, maxPriority(rules), rules.Limits.MaxPriority)
}
