package oci

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpecBudget: a spec's own RT budget (docker run --cpu-rt-runtime) is a request: the
// budget alone when nothing else is asked (the program switches itself), the budget of an
// rtshim.io/ policy that names none; bounded as any budget, refusals naming the flag.
func TestSpecBudget(t *testing.T) {
	withBudget := func(ann map[string]string, runtime int64, period uint64) *specs.Spec {
		s := testSpec(ann, nil, nil)
		s.Linux = &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: &runtime}}}
		if period > 0 {
			s.Linux.Resources.CPU.RealtimePeriod = &period
		}
		return s
	}
	budgetOnly := func(rt, period int64) *Request {
		return &Request{Sched: Sched{Policy: PolicyOther}, Mode: ModeGrant, BudgetOnly: true, RTRuntimeUS: rt, RTPeriodUS: period,
			CPUQuota: QuotaDisable, Exec: Sched{Policy: PolicyOther}}
	}
	for _, tc := range []struct {
		name string
		spec *specs.Spec
		want *Request
		err  string
	}{
		{"budget only", withBudget(nil, 95000, 0), budgetOnly(95000, 1000000), ""},
		{"budget only, own period", withBudget(nil, 9500, 100000), budgetOnly(9500, 100000), ""},
		{"policy takes the spec's budget", withBudget(map[string]string{KeyPolicy: "fifo"}, 95000, 0),
			rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS = 95000 }), ""},
		{"rtshim.io/rt-runtime-us wins", withBudget(map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "20000"}, 95000, 0),
			rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS = 20000 }), ""},
		{"above the limit", withBudget(nil, 950000, 0), nil,
			`linux.resources.cpu.realtimeRuntime="950000": above what a container may hold here: 400000 µs per 1000000 µs (limits.max_rt_runtime_us 400000 per 1000000) (docker run --cpu-rt-runtime)`},
		{"below a tick", withBudget(nil, 20, 0), nil, `realtimeRuntime="20": below the smallest RT budget allowed here, 4000 µs`},
		{"over its period", withBudget(nil, 200000, 100000), nil, `must be from 1 to the RT period (100000 µs`},
	} {
		got, err := ParseRequest(tc.spec, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %+v, %v; want an error with %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v\nwant %+v", tc.name, got, err, tc.want)
		}
	}
	// Budget only: nothing but the budget goes into the spec (no scheduler, no CAP_SYS_NICE,
	// no RLIMIT_RTPRIO: the engine's capabilities and rlimits are the program's).
	s := withBudget(nil, 95000, 0)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_NICE"}}
	r, _ := ParseRequest(s, nil)
	PrepareSpec(s, r, true)
	if s.Process.Scheduler != nil || len(s.Process.Rlimits) != 0 || !reflect.DeepEqual(s.Process.Capabilities.Bounding, []string{"CAP_SYS_NICE"}) ||
		*s.Linux.Resources.CPU.RealtimeRuntime != 95000 {
		t.Errorf("budget-only spec: %+v %+v", s.Process, s.Linux.Resources.CPU)
	}
}

// TestNeedsTick: the kernel's tick is read only where it could change the verdict.
func TestNeedsTick(t *testing.T) {
	parse := func(ann map[string]string, rules *Rules) (*Request, error) {
		return ParseRequest(testSpec(ann, nil, nil), rules)
	}
	d := defaultRules()
	for _, tc := range []struct {
		ann  map[string]string
		want bool
	}{
		{map[string]string{KeyPolicy: "fifo"}, false},                        // the default 100000 µs: above any tick
		{map[string]string{KeyPolicy: "batch"}, false},                       // no budget
		{map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "5000"}, true}, // admitted; a 10 ms tick would refuse it
		{map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "2000"}, true}, // refused; a 1 ms tick would admit it
		{map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "20000"}, false},
	} {
		r, err := parse(tc.ann, d)
		if got := NeedsTick(d, r, err); got != tc.want {
			t.Errorf("%v: NeedsTick %v (request %+v, %v), want %v", tc.ann, got, r, err, tc.want)
		}
	}
	explicit := defaultRules()
	explicit.Limits.MinRTRuntimeUS = 100
	r, err := parse(map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "2000"}, explicit)
	if NeedsTick(explicit, r, err) {
		t.Error("the operator's min_rt_runtime_us makes the tick irrelevant")
	}
}
