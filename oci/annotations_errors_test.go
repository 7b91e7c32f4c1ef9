package oci

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseRequestErrors(t *testing.T) {
	fifo := func(k, v string) map[string]string { return map[string]string{KeyPolicy: "fifo", k: v} }
	huge := strings.Repeat("é", 100000)
	runRequestCases(t, []requestCase{
		{name: "priority 150", ann: fifo(KeyPriority, "150"),
			errs: []string{`invalid argument: rtshim.io/priority="150": must be an integer from 1 to 99 (limits.max_priority is 99)`}},
		{name: "reset-on-fork in grant mode", ann: map[string]string{KeyPolicy: "fifo", KeyMode: "grant", KeyResetOnFork: "true"},
			errs: []string{`rtshim.io/reset-on-fork="true"`, "no effect in grant mode"}},
		{name: "override outside a pod", ann: map[string]string{KeyPolicy + ".container.ctl": "fifo"},
			errs: []string{`rtshim.io/policy.container.ctl="fifo"`, "not in a Kubernetes pod", "use rtshim.io/policy"}},
		{name: "unknown env variable", env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIO=80"},
			errs: []string{`invalid argument: RTSHIM_PRIO="80": unknown variable; the RTSHIM_ variables are RTSHIM_POLICY, RTSHIM_PRIORITY,`}},
		{name: "unknown env variable without value", env: []string{"RTSHIM_"}, errs: []string{`RTSHIM_="": unknown variable`}},
		{name: "priority ten", ann: fifo(KeyPriority, "ten"), errs: []string{`rtshim.io/priority="ten"`, "integer from 1 to 99"}},
		{name: "priority empty", ann: fifo(KeyPriority, ""), errs: []string{`rtshim.io/priority=""`}},
		{name: "priority 0", ann: fifo(KeyPriority, "0"), errs: []string{`="0"`}},
		{name: "priority negative", ann: fifo(KeyPriority, "-1"), errs: []string{`="-1"`}},
		{name: "priority fraction", ann: fifo(KeyPriority, "1.5"), errs: []string{`="1.5"`}},
		{name: "priority fullwidth digits", ann: fifo(KeyPriority, "５０"), errs: []string{`="５０"`}},
		{name: "priority over limit", ann: fifo(KeyPriority, "50"), cfg: func(c *Rules) { c.Limits.MaxPriority, c.Defaults.Priority = 20, 10 },
			errs: []string{"must be an integer from 1 to 20 (limits.max_priority is 20)"}},
		{name: "priority for other", ann: map[string]string{KeyPolicy: "other", KeyPriority: "5"}, errs: []string{"only SCHED_FIFO and SCHED_RR take a priority, not SCHED_OTHER (use rtshim.io/nice)"}},
		{name: "priority for deadline", ann: map[string]string{KeyPolicy: "deadline", KeyPriority: "5", KeyDeadline: "runtime=1ms,deadline=1ms,period=1ms"}, errs: []string{"not SCHED_DEADLINE"}},
		{name: "env priority for batch", env: []string{"RTSHIM_POLICY=batch", "RTSHIM_PRIORITY=5"}, errs: []string{"RTSHIM_PRIORITY=\"5\"", "(use RTSHIM_NICE)"}},
		{name: "unknown policy", ann: map[string]string{KeyPolicy: "SCHED_FOO"}, errs: []string{`rtshim.io/policy="SCHED_FOO": must be one of SCHED_FIFO, SCHED_RR, SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE`}},
		{name: "empty policy", ann: map[string]string{KeyPolicy: ""}, errs: []string{`rtshim.io/policy=""`}},
		{name: "policy SCHED_ alone", ann: map[string]string{KeyPolicy: "SCHED_"}, errs: []string{`="SCHED_"`}},
		{name: "iso policy", ann: map[string]string{KeyPolicy: "iso"}, errs: []string{`="iso"`}},
		{name: "unicode lookalike policy", ann: map[string]string{KeyPolicy: "fıfo"}, errs: []string{`="fıfo"`}},
		{name: "huge policy truncated", ann: map[string]string{KeyPolicy: huge}, errs: []string{`...(200000 bytes)`}},
		{name: "policy not allowed", ann: map[string]string{KeyPolicy: "fifo"}, cfg: func(c *Rules) { c.Limits.AllowedPolicies = []string{"SCHED_OTHER", "batch"} },
			errs: []string{`rtshim.io/policy="fifo": SCHED_FIFO is not allowed on this host (limits.allowed_policies is [SCHED_OTHER, SCHED_BATCH])`}},
		{name: "nothing allowed", ann: map[string]string{KeyPolicy: "other"}, cfg: func(c *Rules) { c.Limits.AllowedPolicies = []string{} },
			errs: []string{"limits.allowed_policies is empty"}},
		{name: "nice for fifo", ann: fifo(KeyNice, "1"), errs: []string{"only SCHED_OTHER and SCHED_BATCH take a nice value, not SCHED_FIFO"}},
		{name: "nice 20", ann: map[string]string{KeyPolicy: "other", KeyNice: "20"}, errs: []string{`rtshim.io/nice="20": must be an integer from -20 to 19`}},
		{name: "nice -21", ann: map[string]string{KeyPolicy: "other", KeyNice: "-21"}, errs: []string{`="-21"`}},
		{name: "nice word", ann: map[string]string{KeyPolicy: "batch", KeyNice: "low"}, errs: []string{`="low"`}},
		{name: "deadline missing", ann: map[string]string{KeyPolicy: "deadline"}, errs: []string{`rtshim.io/policy="deadline": SCHED_DEADLINE needs rtshim.io/deadline`}},
		{name: "deadline for fifo", ann: fifo(KeyDeadline, "runtime=1ms,deadline=1ms,period=1ms"), errs: []string{"only SCHED_DEADLINE takes deadline parameters"}},
		{name: "deadline incomplete", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=1ms"}, errs: []string{"deadline is missing"}},
		{name: "deadline order", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=2ms,deadline=1ms,period=3ms"}, errs: []string{"runtime 2ms exceeds deadline 1ms"}},
		{name: "deadline below kernel minimum", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=1000ns,deadline=1ms,period=1ms"}, errs: []string{"kernel minimum of 1.024µs"}},
		{name: "deadline empty", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: ""}, errs: []string{`rtshim.io/deadline=""`}},
		{name: "deadline budget too small", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=5ms,deadline=10ms,period=10ms", KeyRTRuntimeUS: "1000"},
			errs: []string{`rtshim.io/rt-runtime-us="1000": too small for rtshim.io/deadline="runtime=5ms,deadline=10ms,period=10ms", which needs at least 500000 microseconds per 1000000`}},
		{name: "deadline budget over limit", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=1ms,deadline=1ms,period=1ms"},
			errs: []string{`rtshim.io/deadline="runtime=1ms,deadline=1ms,period=1ms": needs an RT budget of 1000000 microseconds per 1000000, above limits.max_rt_runtime_us (950000)`}},
		{name: "reset on fork 1", ann: fifo(KeyResetOnFork, "1"), errs: []string{`rtshim.io/reset-on-fork="1": must be true or false`}},
		{name: "reset on fork yes", ann: fifo(KeyResetOnFork, "yes"), errs: []string{`="yes"`}},
		{name: "reset on fork long s", ann: fifo(KeyResetOnFork, "falſe"), errs: []string{`="falſe"`}},
		{name: "unknown mode", ann: fifo(KeyMode, "fast"), errs: []string{`rtshim.io/mode="fast": must be apply or grant`}},
		{name: "budget zero", ann: fifo(KeyRTRuntimeUS, "0"), errs: []string{`rtshim.io/rt-runtime-us="0": must be an integer from 1 to 950000 microseconds (defaults.rt_period_us is 1000000, limits.max_rt_runtime_us is 950000)`}},
		{name: "budget negative", ann: fifo(KeyRTRuntimeUS, "-5"), errs: []string{`="-5"`}},
		{name: "budget over period", ann: fifo(KeyRTRuntimeUS, "1000001"), errs: []string{`="1000001"`}},
		{name: "budget overflow", ann: fifo(KeyRTRuntimeUS, "99999999999999999999"), errs: []string{`="99999999999999999999"`}},
		{name: "budget over limit", ann: fifo(KeyRTRuntimeUS, "60000"), cfg: func(c *Rules) { c.Limits.MaxRTRuntimeUS, c.Defaults.RTRuntimeUS = 50000, 10000 },
			errs: []string{"from 1 to 50000 microseconds"}},
		{name: "budget for batch", ann: map[string]string{KeyPolicy: "batch", KeyRTRuntimeUS: "100"}, errs: []string{"only real-time policies"}},
		{name: "unknown cpu quota", ann: fifo(KeyCPUQuota, "off"), errs: []string{`rtshim.io/cpu-quota="off": must be disable or keep`}},
		{name: "exec deadline", ann: fifo(KeyExecPolicy, "deadline"), errs: []string{`rtshim.io/exec-policy="deadline": SCHED_DEADLINE cannot be an exec policy`}},
		{name: "exec unknown", ann: fifo(KeyExecPolicy, "foo"), errs: []string{`rtshim.io/exec-policy="foo": must be one of`}},
		{name: "exec rt without rt policy", ann: map[string]string{KeyExecPolicy: "fifo"}, errs: []string{"needs a real-time rtshim.io/policy"}},
		{name: "exec not allowed", ann: fifo(KeyExecPolicy, "rr"), cfg: func(c *Rules) { c.Limits.AllowedPolicies = []string{"fifo"} },
			errs: []string{`rtshim.io/exec-policy="rr": SCHED_RR is not allowed`}},
		{name: "unknown key", ann: map[string]string{"rtshim.io/polcy": "fifo"},
			errs: []string{`rtshim.io/polcy="fifo": unknown key; valid keys are rtshim.io/policy, rtshim.io/priority`, "rtshim.io/cpu-freq-governor, each optionally followed by .container.<container-name>"}},
		{name: "upper case key", ann: map[string]string{"rtshim.io/Policy": "fifo"}, errs: []string{"rtshim.io/Policy=", "unknown key"}},
		{name: "bare prefix", ann: map[string]string{"rtshim.io/": "x"}, errs: []string{"unknown key"}},
		{name: "weird key quoted", ann: map[string]string{"rtshim.io/\nx": "1"}, errs: []string{`"rtshim.io/\nx"="1": unknown key`}},
		{name: "unknown key for other container", ann: map[string]string{"rtshim.io/prio.container.other": "1", AnnotationContainerName: "ctl"}, errs: []string{"unknown key"}},
		{name: "empty container name", ann: map[string]string{KeyPriority + ".container.": "1"}, errs: []string{"missing container name"}},
		{name: "bad override for this container", ann: map[string]string{KeyPolicy: "fifo", KeyPriority + ".container.ctl": "0", AnnotationContainerName: "ctl"},
			errs: []string{`rtshim.io/priority.container.ctl="0"`}},
		{name: "priority without policy", ann: map[string]string{KeyPriority: "10"}, errs: []string{`rtshim.io/priority="10": needs rtshim.io/policy`}},
		{name: "mode without policy", ann: map[string]string{KeyMode: "grant", KeyCPUQuota: "keep"}, errs: []string{`rtshim.io/mode="grant": needs rtshim.io/policy`}},
		{name: "budget without policy", ann: map[string]string{KeyRTRuntimeUS: "10"}, errs: []string{"needs rtshim.io/policy"}},
		{name: "reset on fork without policy", ann: map[string]string{KeyResetOnFork: "true"}, errs: []string{"needs rtshim.io/policy"}},
		{name: "own priority without policy in per-container pod", ann: map[string]string{
			KeyPolicy + ".container.ctl": "fifo", KeyPriority + ".container.log": "80", AnnotationContainerName: "log"}, errs: []string{"rtshim.io/priority.container.log=\"80\": needs rtshim.io/policy"}},
		{name: "env priority without policy", env: []string{"RTSHIM_PRIORITY=10"}, errs: []string{`RTSHIM_PRIORITY="10": needs RTSHIM_POLICY`}},
		{name: "bad env value", env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=hi"}, errs: []string{`RTSHIM_PRIORITY="hi"`}},
		{name: "spec scheduler with priority annotation", sched: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 1}, ann: map[string]string{KeyPriority: "10"},
			errs: []string{"needs rtshim.io/policy: the spec's process.scheduler is taken as a whole"}},
		{name: "spec fifo priority 0", sched: &specs.Scheduler{Policy: "SCHED_FIFO"}, errs: []string{`process.scheduler.priority="0": SCHED_FIFO needs a priority from 1 to 99`}},
		{name: "spec other priority", sched: &specs.Scheduler{Policy: "SCHED_OTHER", Priority: 5}, errs: []string{"process.scheduler.priority=\"5\": must be 0 for SCHED_OTHER"}},
		{name: "spec iso", sched: &specs.Scheduler{Policy: "SCHED_ISO"}, errs: []string{`process.scheduler.policy="SCHED_ISO"`}},
		{name: "spec flag", sched: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 2000, Deadline: 4000, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_RECLAIM"}},
			errs: []string{`process.scheduler.flags="SCHED_FLAG_RECLAIM": only SCHED_FLAG_RESET_ON_FORK is supported`}},
		{name: "spec not allowed", sched: &specs.Scheduler{Policy: "SCHED_RR", Priority: 1}, cfg: func(c *Rules) { c.Limits.AllowedPolicies = []string{"other"} },
			errs: []string{`process.scheduler.policy="SCHED_RR": SCHED_RR is not allowed`}},
		{name: "spec priority over limit", sched: &specs.Scheduler{Policy: "SCHED_RR", Priority: 90}, cfg: func(c *Rules) { c.Limits.MaxPriority = 80 },
			errs: []string{`process.scheduler.priority="90": must be an integer from 1 to 80 (limits.max_priority is 80)`}},
		{name: "spec deadline budget over limit", sched: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 1000000, Deadline: 1000000},
			errs: []string{`process.scheduler.runtime="1000000": needs an RT budget of 1000000 microseconds`}},
		{name: "invalid config", ann: map[string]string{KeyPolicy: "fifo"}, cfg: func(c *Rules) { c.Defaults.Priority = 0 }, errs: []string{"defaults.priority=0"}},
	})
}

// TestParseRequestErrorSize checks that hostile values cannot blow up error messages, which
// end up in gRPC statuses, kubectl describe and the shim's log.
func TestParseRequestErrorSize(t *testing.T) {
	big := strings.Repeat("\x00\xff", 1<<17)
	for _, k := range append(Keys, Prefix+big) {
		ann := map[string]string{KeyPolicy: "deadline", k: big}
		_, err := ParseRequest(testSpec(ann, nil, nil), nil)
		if err == nil {
			t.Fatalf("%q: no error", k[:20])
		}
		if len(err.Error()) > 1024 {
			t.Errorf("%s: error is %d bytes", k[:20], len(err.Error()))
		}
	}
}
