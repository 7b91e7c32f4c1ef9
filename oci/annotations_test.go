package oci

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rtReq is what a real-time policy gets from permissiveRules(), changed by the mods.
func rtReq(p Policy, prio int, mods ...func(*Request)) *Request {
	r := &Request{
		Sched: Sched{Policy: p, Priority: prio}, Mode: ModeApply,
		RTRuntimeUS: 100000, RTPeriodUS: 1000000, CPUQuota: QuotaDisable,
		Exec: Sched{Policy: PolicyOther},
	}
	for _, m := range mods {
		m(r)
	}
	return r
}

// plainReq is what a non-real-time policy gets: no budget.
func plainReq(s Sched, mods ...func(*Request)) *Request {
	r := &Request{Sched: s, Mode: ModeApply, CPUQuota: QuotaDisable, Exec: Sched{Policy: PolicyOther}}
	for _, m := range mods {
		m(r)
	}
	return r
}

func testSpec(ann map[string]string, env []string, sched *specs.Scheduler) *specs.Spec {
	return &specs.Spec{Annotations: ann, Process: &specs.Process{Env: env, Scheduler: sched}}
}

type requestCase struct {
	name  string
	ann   map[string]string
	env   []string
	sched *specs.Scheduler
	cfg   func(*Rules)
	want  *Request
	errs  []string // substrings of the error; nil means success
}

func runRequestCases(t *testing.T, cases []requestCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := permissiveRules()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			got, err := ParseRequest(testSpec(tc.ann, tc.env, tc.sched), cfg)
			if tc.errs != nil {
				if err == nil {
					t.Fatalf("want error containing %q, got %+v", tc.errs, got)
				}
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("error %v does not wrap ErrInvalidArgument", err)
				}
				for _, s := range tc.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if _, asked := tc.ann[KeyPolicy]; tc.want != nil && tc.sched != nil && !asked {
				w := *tc.want
				w.FromSpec = true // the policy is the spec's own
				tc.want = &w
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseRequestGood(t *testing.T) {
	ms := time.Millisecond
	runRequestCases(t, []requestCase{
		{name: "nothing", want: nil},
		{name: "unrelated annotations", ann: map[string]string{"io.kubernetes.cri.container-name": "a", "rtshim.iox": "1"}, want: nil},
		{name: "fifo default priority", ann: map[string]string{KeyPolicy: "fifo"}, want: rtReq(PolicyFIFO, 50)},
		{name: "rr mixed case", ann: map[string]string{KeyPolicy: "Sched_rr", KeyPriority: "80"}, want: rtReq(PolicyRR, 80)},
		{name: "white space trimmed", ann: map[string]string{KeyPolicy: " SCHED_FIFO\n", KeyPriority: "\t99 "}, want: rtReq(PolicyFIFO, 99)},
		{name: "priority 1", ann: map[string]string{KeyPolicy: "FIFO", KeyPriority: "1"}, want: rtReq(PolicyFIFO, 1)},
		{name: "other with nice", ann: map[string]string{KeyPolicy: "other", KeyNice: "-5"}, want: plainReq(Sched{Policy: PolicyOther, Nice: -5})},
		{name: "batch nice 19", ann: map[string]string{KeyPolicy: "batch", KeyNice: "19"}, want: plainReq(Sched{Policy: PolicyBatch, Nice: 19})},
		{name: "idle", ann: map[string]string{KeyPolicy: "idle"}, want: plainReq(Sched{Policy: PolicyIdle})},
		{name: "deadline raises default budget", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=500us,deadline=1ms,period=1ms"},
			want: rtReq(PolicyDeadline, 0, func(r *Request) {
				r.Sched.Deadline = &Deadline{500 * time.Microsecond, ms, ms}
				r.RTRuntimeUS = 500000
			})},
		{name: "deadline within default budget", ann: map[string]string{KeyPolicy: "SCHED_DEADLINE", KeyDeadline: "period=1ms, runtime=10us, deadline=100us"},
			want: rtReq(PolicyDeadline, 0, func(r *Request) { r.Sched.Deadline = &Deadline{10 * time.Microsecond, 100 * time.Microsecond, ms} })},
		{name: "deadline with explicit budget", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=3ms,deadline=10ms,period=10ms", KeyRTRuntimeUS: "300000"},
			want: rtReq(PolicyDeadline, 0, func(r *Request) {
				r.Sched.Deadline = &Deadline{3 * ms, 10 * ms, 10 * ms}
				r.RTRuntimeUS = 300000
			})},
		{name: "reset on fork", ann: map[string]string{KeyPolicy: "rr", KeyResetOnFork: "TRUE"}, want: rtReq(PolicyRR, 50, func(r *Request) { r.Sched.ResetOnFork = true })},
		{name: "reset on fork false", ann: map[string]string{KeyPolicy: "rr", KeyResetOnFork: "False"}, want: rtReq(PolicyRR, 50)},
		{name: "grant mode", ann: map[string]string{KeyPolicy: "fifo", KeyMode: "Grant"}, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.Mode, r.Grant = ModeGrant, Grant{CapSysNice: true} })},
		{name: "budget", ann: map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "200000"}, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS = 200000 })},
		{name: "budget at limit", ann: map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "950000"}, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS = 950000 })},
		{name: "keep quota", ann: map[string]string{KeyPolicy: "fifo", KeyCPUQuota: "keep"}, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.CPUQuota = QuotaKeep })},
		{name: "exec rr", ann: map[string]string{KeyPolicy: "fifo", KeyExecPolicy: "rr"}, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.Exec = Sched{Policy: PolicyRR, Priority: 50} })},
		{name: "exec policy alone", ann: map[string]string{KeyExecPolicy: "batch"}, want: plainReq(Sched{Policy: PolicyOther}, func(r *Request) { r.Exec.Policy = PolicyBatch })},
		{name: "cpu quota alone", ann: map[string]string{KeyCPUQuota: "keep"}, want: plainReq(Sched{Policy: PolicyOther}, func(r *Request) { r.CPUQuota = QuotaKeep })},
		{name: "quota alone stays apply under default grant", ann: map[string]string{KeyCPUQuota: "disable"}, cfg: func(c *Rules) { c.Defaults.Mode = "grant" },
			want: plainReq(Sched{Policy: PolicyOther})},
		{name: "default mode grant", ann: map[string]string{KeyPolicy: "fifo"}, cfg: func(c *Rules) { c.Defaults.Mode = "grant" },
			want: rtReq(PolicyFIFO, 50, func(r *Request) { r.Mode, r.Grant = ModeGrant, Grant{CapSysNice: true} })},
		{name: "default priority and budget from config", ann: map[string]string{KeyPolicy: "fifo"},
			cfg: func(c *Rules) {
				c.Defaults.Priority, c.Defaults.RTRuntimeUS, c.Defaults.RTPeriodUS, c.Defaults.CPUQuota = 10, 5000, 10000, "keep"
			},
			want: rtReq(PolicyFIFO, 10, func(r *Request) { r.RTRuntimeUS, r.RTPeriodUS, r.CPUQuota = 5000, 10000, QuotaKeep })},
		{name: "default exec fifo for rt container", ann: map[string]string{KeyPolicy: "rr"}, cfg: func(c *Rules) { c.Defaults.ExecPolicy = "fifo" },
			want: rtReq(PolicyRR, 50, func(r *Request) { r.Exec = Sched{Policy: PolicyFIFO, Priority: 50} })},
		{name: "default exec fifo dropped for non-rt", ann: map[string]string{KeyPolicy: "batch"}, cfg: func(c *Rules) { c.Defaults.ExecPolicy = "fifo" },
			want: plainReq(Sched{Policy: PolicyBatch})},
		{name: "container override wins", ann: map[string]string{
			KeyPolicy: "fifo", KeyPriority: "10", KeyPriority + ".container.ctl": "90", AnnotationContainerName: "ctl"},
			want: rtReq(PolicyFIFO, 90)},
		{name: "override policy only for this container", ann: map[string]string{
			KeyPolicy + ".container.ctl": "rr", KeyPolicy + ".container.log": "fifo", AnnotationContainerName: "ctl"},
			want: rtReq(PolicyRR, 50)},
		{name: "override for other container ignored", ann: map[string]string{
			KeyPolicy: "fifo", KeyPriority + ".container.other": "150", AnnotationContainerName: "ctl"},
			want: rtReq(PolicyFIFO, 50)},
		{name: "pod-wide parameters for the containers with a policy", ann: map[string]string{
			KeyPolicy + ".container.ctl": "fifo", KeyPriority: "80", KeyMode: "grant", KeyExecPolicy: "rr", AnnotationContainerName: "ctl"},
			want: rtReq(PolicyFIFO, 80, func(r *Request) {
				r.Mode, r.Exec, r.Grant = ModeGrant, Sched{Policy: PolicyRR, Priority: 50}, Grant{CapSysNice: true}
			})},
		{name: "pod-wide parameters ignored for a container without policy", ann: map[string]string{
			KeyPolicy + ".container.ctl": "fifo", KeyPriority: "80", KeyMode: "grant", KeyExecPolicy: "rr", AnnotationContainerName: "log"},
			want: nil},
		{name: "pod-wide quota and non-rt exec still apply without policy", ann: map[string]string{
			KeyPolicy + ".container.ctl": "fifo", KeyPriority: "80", KeyCPUQuota: "keep", KeyExecPolicy: "idle", AnnotationContainerName: "log"},
			want: plainReq(Sched{Policy: PolicyOther}, func(r *Request) { r.CPUQuota, r.Exec = QuotaKeep, Sched{Policy: PolicyIdle} })},
		{name: "env only", env: []string{"PATH=/bin", "RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=20"}, want: rtReq(PolicyFIFO, 20)},
		{name: "annotation wins over env", ann: map[string]string{KeyPriority: "30"}, env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=20"}, want: rtReq(PolicyFIFO, 30)},
		{name: "all env names", env: []string{"RTSHIM_POLICY=deadline", "RTSHIM_DEADLINE=runtime=1ms,deadline=2ms,period=2ms",
			"RTSHIM_RESET_ON_FORK=false", "RTSHIM_MODE=grant", "RTSHIM_RT_RUNTIME_US=600000", "RTSHIM_CPU_QUOTA=keep", "RTSHIM_EXEC_POLICY=idle"},
			want: rtReq(PolicyDeadline, 0, func(r *Request) {
				r.Sched.Deadline = &Deadline{ms, 2 * ms, 2 * ms}
				r.Mode, r.RTRuntimeUS, r.CPUQuota, r.Exec, r.Grant = ModeGrant, 600000, QuotaKeep, Sched{Policy: PolicyIdle}, Grant{CapSysNice: true}
			})},
		{name: "env nice", env: []string{"RTSHIM_POLICY=other", "RTSHIM_NICE=3"}, want: plainReq(Sched{Policy: PolicyOther, Nice: 3})},
		{name: "other env ignored", env: []string{"RTSHIMPOLICY=fifo", "rtshim_policy=fifo", "PATH=/bin"}, want: nil},
		{name: "first env wins", env: []string{"RTSHIM_POLICY=rr", "RTSHIM_POLICY=bogus"}, want: rtReq(PolicyRR, 50)},
		{name: "env not honoured", env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=999"}, cfg: func(c *Rules) { c.Limits.HonorEnv = false }, want: nil},
		{name: "annotations not honoured", ann: map[string]string{KeyPolicy: "bogus", "rtshim.io/polcy": "x"}, cfg: func(c *Rules) { c.Limits.HonorAnnotations = false }, want: nil},
		{name: "annotations not honoured env still is", ann: map[string]string{KeyPolicy: "bogus"}, env: []string{"RTSHIM_POLICY=rr"},
			cfg: func(c *Rules) { c.Limits.HonorAnnotations = false }, want: rtReq(PolicyRR, 50)},
		{name: "sandbox untouched", ann: map[string]string{AnnotationContainerType: "sandbox", KeyPolicy: "bogus", "rtshim.io/x": "y"}, want: nil},
		{name: "container type container", ann: map[string]string{AnnotationContainerType: "container", KeyPolicy: "fifo"}, want: rtReq(PolicyFIFO, 50)},
		{name: "spec scheduler honoured", sched: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 10, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}},
			want: rtReq(PolicyFIFO, 10, func(r *Request) { r.Sched.ResetOnFork = true })},
		{name: "spec scheduler other nice", sched: &specs.Scheduler{Policy: "SCHED_OTHER", Nice: -3}, want: plainReq(Sched{Policy: PolicyOther, Nice: -3})},
		{name: "spec deadline period defaults to deadline", sched: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 200000, Deadline: 1000000},
			want: rtReq(PolicyDeadline, 0, func(r *Request) {
				r.Sched.Deadline = &Deadline{200 * time.Microsecond, ms, ms}
				r.RTRuntimeUS = 200000
			})},
		{name: "spec scheduler with mode and budget", sched: &specs.Scheduler{Policy: "SCHED_RR", Priority: 5}, ann: map[string]string{KeyMode: "grant", KeyRTRuntimeUS: "1000"},
			want: rtReq(PolicyRR, 5, func(r *Request) { r.Mode, r.RTRuntimeUS, r.Grant = ModeGrant, 1000, Grant{CapSysNice: true} })},
		{name: "annotation policy replaces spec scheduler", sched: &specs.Scheduler{Policy: "SCHED_RR", Priority: 5}, ann: map[string]string{KeyPolicy: "fifo"},
			want: rtReq(PolicyFIFO, 50)},
		{name: "allowed policies normalised", ann: map[string]string{KeyPolicy: "fifo"}, cfg: func(c *Rules) { c.Limits.AllowedPolicies = []string{"fifo"} },
			want: rtReq(PolicyFIFO, 50)},
	})
}

func TestParseRequestNil(t *testing.T) {
	if r, err := ParseRequest(nil, nil); r != nil || err != nil {
		t.Fatalf("nil spec: got %v, %v", r, err)
	}
	// A nil config means the defaults; a spec without Process is fine.
	r, err := ParseRequest(&specs.Spec{Annotations: map[string]string{KeyPolicy: "fifo"}}, nil)
	if err != nil || !reflect.DeepEqual(r, rtReq(PolicyFIFO, 50)) {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestParseRequestDoesNotModifyConfig(t *testing.T) {
	cfg := defaultRules()
	cfg.Limits.AllowedPolicies = []string{"fifo", "rr"}
	cfg.Defaults.Mode = "GRANT"
	if _, err := ParseRequest(testSpec(map[string]string{KeyPolicy: "rr"}, nil, nil), cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.AllowedPolicies[0] != "fifo" || cfg.Defaults.Mode != "GRANT" {
		t.Fatalf("config modified: %+v", cfg)
	}
}

func defaultRules() *Rules {
	r := DefaultRules()
	return &r
}

// permissiveRules allow everything the kernel does, so the parser's own rules can be tested
// apart from the default limits (TestDefaultRules tests those).
func permissiveRules() *Rules {
	r := DefaultRules()
	r.Limits.MaxPriority, r.Limits.MinNice = MaxRTPriority, MinNice
	r.Limits.MaxRTRuntimeUS, r.Limits.MaxPodRTRuntimeUS, r.Limits.MinRTRuntimeUS = 950000, 950000, 1
	r.Limits.HonorEnv = true
	return &r
}

// TestDefaultRules: with no config, a container (or an image's ENV) cannot take the host: the
// defaults bound priority, nice and budget, ignore RTSHIM_ variables, and grant mode bounds the
// program by RLIMIT_RTPRIO rather than handing it CAP_SYS_NICE.
func TestDefaultRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		ann  map[string]string
		env  []string
		want *Request
		errs []string
	}{
		{name: "an image's ENV is not a request", env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=99", "RTSHIM_RT_RUNTIME_US=950000"}},
		{name: "priority above 90", ann: map[string]string{KeyPolicy: "fifo", KeyPriority: "99"},
			errs: []string{`rtshim.io/priority="99": must be an integer from 1 to 90 (limits.max_priority is 90)`}},
		{name: "negative nice", ann: map[string]string{KeyPolicy: "other", KeyNice: "-20"},
			errs: []string{`rtshim.io/nice="-20": must be an integer from 0 to 19 (limits.min_nice is 0)`}},
		{name: "spec's own negative nice", ann: map[string]string{}, errs: []string{`process.scheduler.nice="-1"`, "limits.min_nice is 0"}},
		{name: "budget above 40%", ann: map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "950000"},
			errs: []string{`rtshim.io/rt-runtime-us="950000": must be an integer from 4000 to 400000`}},
		{name: "budget below a tick", ann: map[string]string{KeyPolicy: "fifo", KeyRTRuntimeUS: "20"},
			errs: []string{`rtshim.io/rt-runtime-us="20": below the smallest RT budget allowed here, 4000 microseconds (one scheduler tick`}},
		{name: "grant is bounded by RLIMIT_RTPRIO", ann: map[string]string{KeyPolicy: "rr", KeyPriority: "10", KeyMode: "grant"},
			want: rtReq(PolicyRR, 10, func(r *Request) { r.Mode, r.Grant = ModeGrant, Grant{RTPrio: 10} })},
		{name: "grant of DEADLINE needs CAP_SYS_NICE", ann: map[string]string{KeyPolicy: "deadline", KeyDeadline: "runtime=1ms,deadline=10ms,period=10ms", KeyMode: "grant"},
			errs: []string{`rtshim.io/mode="grant": a granted program could only set SCHED_DEADLINE with CAP_SYS_NICE`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec(tc.ann, tc.env, nil)
			if tc.name == "spec's own negative nice" {
				spec.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_OTHER", Nice: -1}
			}
			got, err := ParseRequest(spec, nil)
			if tc.errs != nil {
				for _, s := range tc.errs {
					if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), s) {
						t.Errorf("got %+v, %v; want an error with %q", got, err, s)
					}
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

// TestGrantBound: grant mode hands out CAP_SYS_NICE only where the limits allow everything it
// allows, and is refused where the kernel cannot hold a granted program to the limits.
func TestGrantBound(t *testing.T) {
	grant := func(policy string, mod func(*Rules)) (*Request, error) {
		r := permissiveRules()
		if mod != nil {
			mod(r)
		}
		ann := map[string]string{KeyPolicy: policy, KeyMode: "grant"}
		if policy == "deadline" {
			ann[KeyDeadline] = "runtime=1ms,deadline=10ms,period=10ms"
		}
		return ParseRequest(testSpec(ann, nil, nil), r)
	}
	if r, err := grant("fifo", nil); err != nil || r.Grant != (Grant{CapSysNice: true}) {
		t.Errorf("permissive limits: %+v, %v; want CAP_SYS_NICE", r, err)
	}
	for _, mod := range []func(*Rules){
		func(r *Rules) { r.Limits.MaxPriority = 98 },
		func(r *Rules) { r.Limits.MinNice = -19 },
		func(r *Rules) { r.Limits.MaxRTRuntimeUS = 900000 },
		func(r *Rules) { r.Limits.MaxPodRTRuntimeUS = 900000 },
		func(r *Rules) { r.Limits.AllowedPolicies = []string{"fifo", "rr", "other"} },
	} {
		if r, err := grant("fifo", mod); err != nil || r.Grant != (Grant{RTPrio: 50}) {
			t.Errorf("limited: %+v, %v; want RLIMIT_RTPRIO 50 and no CAP_SYS_NICE", r, err)
		}
	}
	if _, err := grant("rr", func(r *Rules) { r.Limits.AllowedPolicies = []string{"rr", "other"} }); err == nil ||
		!strings.Contains(err.Error(), "allows SCHED_FIFO and SCHED_RR alike") {
		t.Errorf("only RR allowed: %v", err)
	}
	if _, err := grant("fifo", func(r *Rules) { r.Limits.AllowGrant = false }); err == nil ||
		!strings.Contains(err.Error(), `rtshim.io/mode="grant": grant mode is not allowed on this host (limits.allow_grant is false)`) {
		t.Errorf("grant not allowed: %v", err)
	}
	if r, err := grant("batch", func(r *Rules) { r.Limits.MaxPriority, r.Defaults.Priority = 10, 10 }); err != nil || r.Grant != (Grant{}) {
		t.Errorf("grant of a non-RT policy under limits grants nothing: %+v, %v", r, err)
	}
}

// TestMayAsk: a spec that asks for nothing is told apart without decoding it, and no spelling
// of a key can hide a request from the limits.
func TestMayAsk(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"process":{"args":["sh"],"env":["PATH=/bin"]},"annotations":{"io.kubernetes.cri.container-type":"container"}}`: false,
		`{"annotations":{"rtshim.io/policy":"fifo"}}`:                                                                    true,
		`{"annotations":{"allocation.rtshim.io/rt-bandwidth":"10"}}`:                                                     true,
		`{"annotations":{"cpu-quota.crio.io":"disable"}}`:                                                                true,
		`{"process":{"env":["RTSHIM_POLICY=fifo"]}}`:                                                                     true,
		`{"process":{"scheduler":{"policy":"SCHED_FIFO","priority":99}}}`:                                                true,
		`{"process":{"sch\u0065duler":{"policy":"SCHED_FIFO","priority":99}}}`:                                           true,
		`{"linux":{"resources":{"cpu":{"realtimeRuntime":950000}}}}`:                                                     true,
		`{"annotations":{"rtshim.io\/policy":"fifo"}}`:                                                                   true,
	} {
		if got := MayAsk([]byte(raw)); got != want {
			t.Errorf("MayAsk(%s) = %v, want %v", raw, got, want)
		}
		// Whatever MayAsk passes over, ParseRequest must find nothing in either.
		var spec specs.Spec
		if err := json.Unmarshal([]byte(raw), &spec); err == nil && !MayAsk([]byte(raw)) {
			if r, err := ParseRequest(&spec, permissiveRules()); r != nil || err != nil {
				t.Errorf("%s: MayAsk says nothing, ParseRequest %+v, %v", raw, r, err)
			}
		}
	}
}
