package oci

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func allCaps(c ...string) *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
}

var dl = &Deadline{Runtime: 500 * time.Microsecond, Deadline: time.Millisecond, Period: 2 * time.Millisecond}

func TestSpecScheduler(t *testing.T) {
	for _, tc := range []struct {
		in   Sched
		want *specs.Scheduler
	}{
		{Sched{Policy: PolicyFIFO, Priority: 10}, &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 10}},
		{Sched{Policy: PolicyOther}, &specs.Scheduler{Policy: "SCHED_OTHER"}},
		{Sched{Policy: PolicyBatch, Nice: -3, ResetOnFork: true},
			&specs.Scheduler{Policy: "SCHED_BATCH", Nice: -3, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_RESET_ON_FORK"}}},
		{Sched{Policy: PolicyDeadline, Deadline: dl}, &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 500000, Deadline: 1000000, Period: 2000000}},
		{Sched{Policy: PolicyDeadline, Deadline: &Deadline{Runtime: -1}}, &specs.Scheduler{Policy: "SCHED_DEADLINE"}},
	} {
		if got := SpecScheduler(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SpecScheduler(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseSpecScheduler(t *testing.T) {
	reset := []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}
	for _, tc := range []struct {
		in   *specs.Scheduler
		want Sched
		err  string
	}{
		{in: nil, want: Sched{Policy: PolicyOther}},
		{in: &specs.Scheduler{Policy: "SCHED_RR", Priority: 99, Flags: reset}, want: Sched{Policy: PolicyRR, Priority: 99, ResetOnFork: true}},
		{in: &specs.Scheduler{Policy: "SCHED_BATCH", Nice: 19}, want: Sched{Policy: PolicyBatch, Nice: 19}},
		{in: &specs.Scheduler{Policy: "SCHED_IDLE"}, want: Sched{Policy: PolicyIdle}},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 500000, Deadline: 1000000, Period: 2000000}, want: Sched{Policy: PolicyDeadline, Deadline: dl}},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 1024, Deadline: 2048}, want: Sched{Policy: PolicyDeadline, Deadline: &Deadline{1024, 2048, 2048}}},
		{in: &specs.Scheduler{Policy: ""}, err: `process.scheduler.policy=""`},
		{in: &specs.Scheduler{Policy: "SCHED_ISO"}, err: `process.scheduler.policy="SCHED_ISO"`},
		{in: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 100}, err: `process.scheduler.priority="100": SCHED_FIFO needs a priority from 1 to 99`},
		{in: &specs.Scheduler{Policy: "SCHED_RR", Priority: -1}, err: `priority="-1"`},
		{in: &specs.Scheduler{Policy: "SCHED_IDLE", Priority: 1}, err: "must be 0 for SCHED_IDLE"},
		{in: &specs.Scheduler{Policy: "SCHED_OTHER", Nice: 20}, err: `process.scheduler.nice="20": must be from -20 to 19`},
		{in: &specs.Scheduler{Policy: "SCHED_OTHER", Nice: math.MinInt32}, err: `nice="-2147483648"`},
		{in: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 1, Nice: 1}, err: "process.scheduler.nice=\"1\": must be 0 for SCHED_FIFO"},
		{in: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 1, Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_KEEP_POLICY"}}, err: `flags="SCHED_FLAG_KEEP_POLICY"`},
		{in: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 1, Period: 5}, err: `process.scheduler.period="5": must be 0 for SCHED_FIFO`},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Deadline: 1000}, err: `process.scheduler.runtime="0": SCHED_DEADLINE needs it`},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 1000}, err: `process.scheduler.deadline="0"`},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 2000, Deadline: 1 << 63}, err: `deadline="9223372036854775808"`},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 1000, Deadline: 2000}, err: "below the kernel minimum"},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 3000, Deadline: 2000}, err: "exceeds deadline"},
		{in: &specs.Scheduler{Policy: "SCHED_DEADLINE", Runtime: 2000, Deadline: 3000, Period: 2500}, err: "exceeds period"},
	} {
		got, err := ParseSpecScheduler(tc.in)
		if tc.err != "" {
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSpecScheduler(%+v) = %+v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseSpecScheduler(%+v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.in != nil {
			// What rtshim writes back is what the spec had (period made explicit).
			if back, err := ParseSpecScheduler(SpecScheduler(got)); err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("round trip of %+v: %+v, %v", got, back, err)
			}
		}
	}
}

func TestSpecOptionsNilSafe(t *testing.T) {
	Apply(nil, WithScheduler(Sched{Policy: PolicyFIFO, Priority: 1}), WithoutScheduler, WithCapability(CapSysNice),
		WithRTBudget(1, 2), WithoutCPUQuota)
	for _, o := range []func(*specs.Spec){WithScheduler(Sched{}), WithoutScheduler, WithCapability("x"), WithRTBudget(1, 2), WithoutCPUQuota} {
		o(nil)
		o(&specs.Spec{})
	}
	PrepareSpec(nil, &Request{}, true)
	PrepareSpec(&specs.Spec{}, nil, true)
	ExecProcess(nil, &Request{})
	ExecProcess(&specs.Process{}, nil)
	UpdateResources(nil, &Request{})
	UpdateResources(&specs.LinuxResources{}, rtReq(PolicyFIFO, 1))
}

func TestWithCapability(t *testing.T) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: []string{"CAP_KILL", CapSysNice}, Effective: []string{"CAP_KILL"},
	}}}
	Apply(s, WithCapability(CapSysNice), WithCapability(CapSysNice))
	want := &specs.LinuxCapabilities{
		Bounding: []string{"CAP_KILL", CapSysNice}, Effective: []string{"CAP_KILL", CapSysNice},
		Permitted: []string{CapSysNice}, Inheritable: []string{CapSysNice}, Ambient: []string{CapSysNice},
	}
	if !reflect.DeepEqual(s.Process.Capabilities, want) {
		t.Errorf("got %+v, want %+v", s.Process.Capabilities, want)
	}
}

func TestPrepareSpec(t *testing.T) {
	base := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Scheduler: &specs.Scheduler{Policy: "SCHED_RR", Priority: 3},
				Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}, {Type: RlimitRTPrio, Hard: 99, Soft: 99}}},
			Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}}},
		}
	}
	fifo := SpecScheduler(Sched{Policy: PolicyFIFO, Priority: 50})
	for _, tc := range []struct {
		name  string
		r     *Request
		v1    bool
		sched *specs.Scheduler
		caps  *specs.LinuxCapabilities
		cpu   specs.LinuxCPU
		// rlimits after the change; base has NOFILE 1024 and RTPRIO 99.
		rlimits []specs.POSIXRlimit
	}{
		{name: "apply v1", r: rtReq(PolicyFIFO, 50), v1: true, sched: fifo,
			cpu: specs.LinuxCPU{Period: u64(100000), RealtimeRuntime: i64(100000), RealtimePeriod: u64(1000000)}},
		{name: "apply v2 no budget", r: rtReq(PolicyFIFO, 50), sched: fifo, cpu: specs.LinuxCPU{Period: u64(100000)}},
		{name: "keep quota", r: rtReq(PolicyFIFO, 50, func(r *Request) { r.CPUQuota = QuotaKeep }), sched: fifo,
			cpu: specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}},
		{name: "grant", r: rtReq(PolicyFIFO, 50, func(r *Request) { r.Mode, r.Grant = ModeGrant, Grant{CapSysNice: true} }), v1: true, caps: allCaps(CapSysNice),
			cpu: specs.LinuxCPU{Period: u64(100000), RealtimeRuntime: i64(100000), RealtimePeriod: u64(1000000)}},
		{name: "grant bounded by rlimit", r: rtReq(PolicyFIFO, 50, func(r *Request) { r.Mode, r.Grant = ModeGrant, Grant{RTPrio: 50} }), v1: true,
			rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}, {Type: RlimitRTPrio, Hard: 50, Soft: 50}},
			cpu:     specs.LinuxCPU{Period: u64(100000), RealtimeRuntime: i64(100000), RealtimePeriod: u64(1000000)}},
		{name: "non-rt apply sets scheduler only", r: plainReq(Sched{Policy: PolicyBatch, Nice: 5}), v1: true,
			sched: &specs.Scheduler{Policy: "SCHED_BATCH", Nice: 5}, cpu: specs.LinuxCPU{Quota: i64(50000), Period: u64(100000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			PrepareSpec(s, tc.r, tc.v1)
			if !reflect.DeepEqual(s.Process.Scheduler, tc.sched) {
				t.Errorf("scheduler %+v, want %+v", s.Process.Scheduler, tc.sched)
			}
			if !reflect.DeepEqual(s.Process.Capabilities, tc.caps) {
				t.Errorf("capabilities %+v, want %+v", s.Process.Capabilities, tc.caps)
			}
			if tc.rlimits == nil {
				tc.rlimits = base().Process.Rlimits
			}
			if !reflect.DeepEqual(s.Process.Rlimits, tc.rlimits) {
				t.Errorf("rlimits %+v, want %+v", s.Process.Rlimits, tc.rlimits)
			}
			if !reflect.DeepEqual(*s.Linux.Resources.CPU, tc.cpu) {
				t.Errorf("cpu %+v, want %+v", *s.Linux.Resources.CPU, tc.cpu)
			}
		})
	}
}

func TestPrepareSpecCreatesSections(t *testing.T) {
	s := &specs.Spec{}
	PrepareSpec(s, rtReq(PolicyRR, 7, func(r *Request) { r.RTRuntimeUS = 1234 }), true)
	if s.Process.Scheduler.Priority != 7 || *s.Linux.Resources.CPU.RealtimeRuntime != 1234 || s.Linux.Resources.CPU.Quota != nil {
		t.Errorf("got %+v %+v", s.Process, s.Linux.Resources.CPU)
	}
}

func TestExecProcess(t *testing.T) {
	p := &specs.Process{Scheduler: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 99}}
	ExecProcess(p, rtReq(PolicyFIFO, 50))
	if !reflect.DeepEqual(p.Scheduler, &specs.Scheduler{Policy: "SCHED_OTHER"}) {
		t.Errorf("exec scheduler %+v: SCHED_OTHER must be explicit", p.Scheduler)
	}
	ExecProcess(p, rtReq(PolicyFIFO, 50, func(r *Request) { r.Exec = Sched{Policy: PolicyRR, Priority: 50} }))
	if !reflect.DeepEqual(p.Scheduler, &specs.Scheduler{Policy: "SCHED_RR", Priority: 50}) {
		t.Errorf("exec scheduler %+v", p.Scheduler)
	}
	ExecProcess(p, &Request{}) // hand-built, no exec policy: still explicit
	if p.Scheduler == nil || p.Scheduler.Policy != specs.SchedOther {
		t.Errorf("exec scheduler %+v", p.Scheduler)
	}
}

func TestUpdateResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       *Request
		in, out specs.LinuxCPU
	}{
		{name: "quota lifted", r: rtReq(PolicyFIFO, 1), in: specs.LinuxCPU{Quota: i64(20000), Period: u64(100000)},
			out: specs.LinuxCPU{Quota: i64(-1), Period: u64(100000)}},
		{name: "no quota stays unset", r: rtReq(PolicyFIFO, 1), in: specs.LinuxCPU{Shares: u64(2)}, out: specs.LinuxCPU{Shares: u64(2)}},
		{name: "budget dropped", r: rtReq(PolicyRR, 1, func(r *Request) { r.CPUQuota = QuotaKeep }),
			in:  specs.LinuxCPU{Quota: i64(20000), RealtimeRuntime: i64(1), RealtimePeriod: u64(2)},
			out: specs.LinuxCPU{Quota: i64(20000)}},
		{name: "non-rt untouched", r: plainReq(Sched{Policy: PolicyOther}),
			in:  specs.LinuxCPU{Quota: i64(20000), RealtimeRuntime: i64(1)},
			out: specs.LinuxCPU{Quota: i64(20000), RealtimeRuntime: i64(1)}},
	} {
		cpu := tc.in
		UpdateResources(&specs.LinuxResources{CPU: &cpu}, tc.r)
		if !reflect.DeepEqual(cpu, tc.out) {
			t.Errorf("%s: got %+v, want %+v", tc.name, cpu, tc.out)
		}
	}
}
