package oci

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fuzzConfig has limits that the fuzzer meets: a priority, nice and budget ceiling, a policy
// left out, the environment honoured.
func fuzzConfig() *Rules {
	c := defaultRules()
	c.Limits.MaxPriority = 80
	c.Limits.MinNice = -5
	c.Limits.MaxRTRuntimeUS = 900000
	c.Limits.AllowedPolicies = []string{"SCHED_FIFO", "SCHED_RR", "SCHED_OTHER", "SCHED_BATCH", "SCHED_DEADLINE"}
	c.Limits.HonorEnv = true
	return c
}

// FuzzParseRequest feeds untrusted annotations and environment (what any user who can create
// a pod controls) to ParseRequest: it must never panic, every error must be InvalidArgument
// and short, and every Request must satisfy the kernel's and the host's rules.
func FuzzParseRequest(f *testing.F) {
	f.Add(uint16(0x1ff), "fifo", "50", "0", "", "true", "apply", "100000", "disable", "other", "", "", "", "ctl")
	f.Add(uint16(0x001), "SCHED_FOO", "", "", "", "", "", "", "", "", "", "", "", "")
	f.Add(uint16(0x003), "rr", "150", "", "", "", "", "", "", "", "", "", "", "")
	f.Add(uint16(0x00f), "deadline", "", "", "runtime=500us,deadline=1ms,period=1ms", "", "grant", "", "", "", "", "", "", "")
	f.Add(uint16(0x049), "deadline", "", "", "runtime=5ms,deadline=10ms,period=10ms", "", "", "1000", "", "", "", "", "", "")
	f.Add(uint16(0x005), "batch", "", "-20", "", "", "", "", "", "", "", "", "", "")
	f.Add(uint16(0x100), "", "", "", "", "", "", "", "", "fifo", "", "", "", "")
	f.Add(uint16(0x080), "", "", "", "", "", "", "", "keep", "", "", "", "", "")
	f.Add(uint16(0x000), "", "", "", "", "", "", "", "", "", "rtshim.io/priority.container.ctl", "7", "RTSHIM_POLICY=fifo", "ctl")
	f.Add(uint16(0x000), "", "", "", "", "", "", "", "", "", "rtshim.io/polcy", "fifo", "", "")
	f.Add(uint16(0x000), "", "", "", "", "", "", "", "", "", "rtshim.io/policy.container.", "x", "", "")
	f.Add(uint16(0x000), "", "", "", "", "", "", "", "", "", "", "", "RTSHIM_PRIORITY=1\nRTSHIM_POLICY=Sched_RR\nRTSHIM_NICE", "")
	f.Add(uint16(0x002), "", "ten", "", "", "", "", "", "", "", "", "", "", "")
	f.Add(uint16(0x001), "fıfo", "", "", "", "", "", "", "", "", "", "", "", "")
	f.Add(uint16(0x200), "", "", "", "", "", "", "", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, mask uint16, policy, priority, nice, deadline, reset, mode, budget, quota, exec, extraKey, extraVal, env, name string) {
		ann := map[string]string{AnnotationContainerName: name}
		for i, v := range []string{policy, priority, nice, deadline, reset, mode, budget, quota, exec} {
			if mask&(1<<i) != 0 {
				ann[Keys[i]] = v
			}
		}
		if extraKey != "" {
			ann[extraKey] = extraVal
		}
		spec := testSpec(ann, strings.Split(env, "\n"), nil)
		if mask&(1<<9) != 0 {
			// Bits 10-15 pick a process.scheduler, with values that are often wrong.
			spec.Process.Scheduler = &specs.Scheduler{Policy: Policies[int(mask>>10)%len(Policies)].spec(),
				Priority: int32(len(priority)), Nice: int32(len(nice)) - 20, Runtime: uint64(len(deadline)) << 10,
				Deadline: uint64(len(deadline)) << 11}
		}
		cfg := fuzzConfig()
		r, err := ParseRequest(spec, cfg)
		if err != nil {
			if r != nil || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %+v, %v", r, err)
			}
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("error of %d bytes: %.200s", n, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not valid UTF-8: %q", err)
			}
			return
		}
		if r != nil {
			checkRequest(t, r, cfg)
		}
	})
}

func (p Policy) spec() specs.LinuxSchedulerPolicy { return specs.LinuxSchedulerPolicy(p) }

// checkRequest asserts what every Request must satisfy, whatever the input.
func checkRequest(t *testing.T, r *Request, cfg *Rules) {
	t.Helper()
	s := r.Sched
	fifoRR := s.Policy == PolicyFIFO || s.Policy == PolicyRR
	switch {
	case fifoRR && (s.Priority < 1 || s.Priority > cfg.Limits.MaxPriority), !fifoRR && s.Priority != 0:
		t.Fatalf("bad priority: %+v", r)
	case s.Nice < MinNice || s.Nice > MaxNice, s.Nice != 0 && s.Policy != PolicyOther && s.Policy != PolicyBatch:
		t.Fatalf("bad nice: %+v", r)
	case (s.Deadline != nil) != (s.Policy == PolicyDeadline):
		t.Fatalf("deadline parameters without SCHED_DEADLINE or the reverse: %+v", r)
	case s.Deadline != nil && checkDeadline(*s.Deadline) != "":
		t.Fatalf("bad deadline: %+v", *s.Deadline)
	case r.Mode != ModeApply && r.Mode != ModeGrant, r.CPUQuota != QuotaDisable && r.CPUQuota != QuotaKeep:
		t.Fatalf("bad mode or quota: %+v", r)
	case r.Exec.Policy == PolicyDeadline, r.Exec.Policy.RealTime() && !s.Policy.RealTime():
		t.Fatalf("bad exec policy: %+v", r)
	}
	if s.Policy.RealTime() {
		if r.RTPeriodUS != cfg.Defaults.RTPeriodUS || r.RTRuntimeUS < 1 || r.RTRuntimeUS > min(r.RTPeriodUS, cfg.Limits.MaxRTRuntimeUS) {
			t.Fatalf("bad budget: %+v", r)
		}
		if s.Deadline != nil && deadlineBudgetUS(*s.Deadline, r.RTPeriodUS) > r.RTRuntimeUS {
			t.Fatalf("budget too small for deadline: %+v %+v", r, *s.Deadline)
		}
	} else if r.RTRuntimeUS != 0 || r.RTPeriodUS != 0 {
		t.Fatalf("budget for a non-RT policy: %+v", r)
	}
	// What PrepareSpec writes must be honoured as the same setting when read back.
	spec := &specs.Spec{}
	PrepareSpec(spec, &Request{Sched: s, Mode: ModeApply}, true)
	back, err := ParseRequest(spec, cfg)
	if err != nil || !reflect.DeepEqual(back.Sched, s) {
		t.Fatalf("scheduler %+v read back as %+v, %v", s, back, err)
	}
	ExecProcess(&specs.Process{}, r)
	UpdateResources(&specs.LinuxResources{CPU: &specs.LinuxCPU{}}, r)
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"SCHED_FIFO", "fifo", "Sched_rr", "deadline ", "", "SCHED_", "SCHED_FOO", "fıfo", "ſched_rr", "iso"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePolicyErr(s)
		if err != nil {
			if p != "" || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("parsePolicyErr(%q) = %q, %v", s, p, err)
			}
			return
		}
		if !reflect.DeepEqual(p, mustPolicy(t, string(p))) || !reflect.DeepEqual(p, mustPolicy(t, strings.ToLower(s))) {
			t.Fatalf("parsePolicyErr(%q) = %q is not canonical or not case-insensitive", s, p)
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				t.Fatalf("ParsePolicy accepted non-ASCII %q as %q", s, p)
			}
		}
	})
}

func mustPolicy(t *testing.T, s string) Policy {
	t.Helper()
	p, err := parsePolicyErr(s)
	if err != nil {
		t.Fatalf("parsePolicyErr(%q): %v", s, err)
	}
	return p
}

func FuzzParseDeadline(f *testing.F) {
	for _, s := range []string{"runtime=500us,deadline=1ms,period=1ms", "period=1s,deadline=1s,runtime=1024ns", "runtime=1ms",
		"runtime=2ms,deadline=1ms,period=3ms", "runtime=1ms,deadline=1ms,period=1ms,", "runtime=-1ms,deadline=1ms,period=1ms",
		"runtime=1ms,runtime=1ms,period=1ms", "runtime=100µs,deadline=1h,period=2562047h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDeadlineErr(s)
		if err != nil {
			if d != (Deadline{}) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("parseDeadlineErr(%q) = %+v, %v", s, d, err)
			}
			return
		}
		if d.Runtime < MinDeadlineRuntime || d.Runtime > d.Deadline || d.Deadline > d.Period {
			t.Fatalf("parseDeadlineErr(%q) accepted %+v", s, d)
		}
		// The canonical form parses back to the same parameters.
		canon := fmt.Sprintf("runtime=%v,deadline=%v,period=%v", d.Runtime, d.Deadline, d.Period)
		if back, err := parseDeadlineErr(canon); err != nil || back != d {
			t.Fatalf("%q: %+v, %v; want %+v", canon, back, err, d)
		}
		if got := deadlineBudgetUS(d, 1000000); got < 1 || got > 1000000 {
			t.Fatalf("budget for %+v is %d", d, got)
		}
	})
}
