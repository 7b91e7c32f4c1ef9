package oci

import (
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// tuningRules allows every knob on CPUs 1-3.
func tuningRules() *Rules {
	r := permissiveRules()
	r.Limits.TunableCPUs = "1-3"
	r.Limits.AllowExclusiveCPUs, r.Limits.AllowIRQTuning, r.Limits.AllowCStates = true, true, true
	r.Limits.AllowedGovernors = []string{"performance"}
	return r
}

// podSpec is a Kubernetes container with a cpuset and shares (1024 per CPU in a Guaranteed pod).
func podSpec(ann map[string]string, cpus string, shares uint64) *specs.Spec {
	s := testSpec(ann, nil, nil)
	s.Linux = &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: cpus, Shares: &shares}}}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[AnnotationContainerType], s.Annotations[AnnotationContainerName] = "container", "app"
	return s
}

func TestTuning(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    *specs.Spec
		cfg     func(*Rules)
		want    *Tuning // nil: no tuning
		skipped string
		errs    []string
	}{
		{name: "explicit CPUs", spec: testSpec(map[string]string{KeyCPUs: "2-3"}, nil, nil), want: &Tuning{CPUs: "2-3", Exclusive: true}},
		{name: "everything", spec: testSpec(map[string]string{KeyCPUs: "2", KeyCPULoadBalancing: "disable", KeyIRQLoadBalancing: "housekeeping",
			KeyCPUCStates: "max_latency:20", KeyCPUFreqGovernor: "performance"}, nil, nil),
			want: &Tuning{CPUs: "2", Exclusive: true, NoLoadBalance: true, IRQ: IRQHousekeeping, ResumeLatency: "20", Governor: "performance"}},
		{name: "assigned by the kubelet", spec: podSpec(map[string]string{KeyCPUs: "assigned"}, "2-3", 2048), want: &Tuning{CPUs: "2-3", Exclusive: true}},
		{name: "knob on the spec's CPUs, shared", spec: podSpec(map[string]string{KeyCPUCStates: "disable"}, "1-3", 3072),
			want: &Tuning{CPUs: "1-3", ResumeLatency: LatencyNone}},
		{name: "per container", spec: podSpec(map[string]string{KeyCPUs + ".container.app": "3", KeyCPUs + ".container.other": "1"}, "", 0),
			want: &Tuning{CPUs: "3", Exclusive: true}},
		{name: "enable values change nothing", spec: podSpec(map[string]string{KeyIRQLoadBalancing: "enable", KeyCPULoadBalancing: "Enable"}, "2", 1024)},
		{name: "c-states enable", spec: podSpec(map[string]string{KeyCPUCStates: "enable"}, "2", 1024), want: &Tuning{CPUs: "2", ResumeLatency: LatencyAny}},

		// CRI-O's names and values.
		{name: "crio load balancing true", spec: podSpec(map[string]string{CRIOCPULoadBalancing: "true"}, "2-3", 2048),
			want: &Tuning{CPUs: "2-3", Exclusive: true, NoLoadBalance: true}},
		{name: "crio all", spec: podSpec(map[string]string{CRIOCPULoadBalancing: "disable", CRIOIRQLoadBalancing: "disable", CRIOCPUCStates: "disable",
			CRIOCPUFreqGovernor: "performance"}, "2", 1024),
			want: &Tuning{CPUs: "2", Exclusive: true, NoLoadBalance: true, IRQ: IRQDisable, ResumeLatency: LatencyNone, Governor: "performance"}},
		{name: "crio per container form", spec: podSpec(map[string]string{CRIOIRQLoadBalancing + "/app": "housekeeping", CRIOIRQLoadBalancing + "/x": "disable"}, "2", 1024),
			want: &Tuning{CPUs: "2", IRQ: IRQHousekeeping}},
		{name: "crio other container only", spec: podSpec(map[string]string{CRIOIRQLoadBalancing + "/x": "disable"}, "2", 1024)},
		{name: "rtshim key wins over its alias", spec: podSpec(map[string]string{CRIOCPUCStates: "disable", KeyCPUCStates: "enable"}, "2", 1024),
			want: &Tuning{CPUs: "2", ResumeLatency: LatencyAny}},
		{name: "crio on a burstable container is skipped, as CRI-O skips it", spec: podSpec(map[string]string{CRIOCPULoadBalancing: "disable"}, "0-3", 512),
			skipped: "not its own"},

		// Refusals.
		{name: "rtshim key on a burstable container", spec: podSpec(map[string]string{KeyCPUs: "assigned"}, "0-3", 512),
			errs: []string{"rtshim.io/cpus: container's CPUs 0-3 are not its own", "cpu.shares would be 4096; it is 512"}},
		{name: "assigned without cpuset", spec: testSpec(map[string]string{KeyCPUs: "assigned"}, nil, nil), errs: []string{`rtshim.io/cpus="assigned": the container has no CPUs assigned`}},
		{name: "bad list", spec: testSpec(map[string]string{KeyCPUs: "2-x"}, nil, nil), errs: []string{`rtshim.io/cpus="2-x": must be a CPU list`}},
		{name: "empty list", spec: testSpec(map[string]string{KeyCPUs: ""}, nil, nil), errs: []string{`rtshim.io/cpus="": must be a CPU list`, "is empty"}},
		{name: "outside the engine's cpuset", spec: podSpec(map[string]string{KeyCPUs: "3"}, "1-2", 2048), errs: []string{"CPUs 3 are outside the container's cpuset 1-2"}},
		{name: "not tunable", spec: testSpec(map[string]string{KeyCPUs: "0-1"}, nil, nil), errs: []string{`rtshim.io/cpus="0-1": CPUs 0 may not be tuned on this host (limits.tunable_cpus is "1-3")`}},
		{name: "knob without CPUs", spec: testSpec(map[string]string{KeyIRQLoadBalancing: "disable"}, nil, nil), errs: []string{`rtshim.io/irq-load-balancing="disable": acts on the container's CPUs`}},
		{name: "bad irq mode", spec: testSpec(map[string]string{KeyCPUs: "2", KeyIRQLoadBalancing: "off"}, nil, nil), errs: []string{"must be disable, housekeeping or enable"}},
		{name: "bad c-states", spec: testSpec(map[string]string{KeyCPUs: "2", KeyCPUCStates: "max_latency:0"}, nil, nil), errs: []string{"max_latency:<µs>"}},
		{name: "bad governor name", spec: testSpec(map[string]string{KeyCPUs: "2", KeyCPUFreqGovernor: "../x"}, nil, nil), errs: []string{"cpufreq governor name"}},
		{name: "governor not allowed", spec: testSpec(map[string]string{KeyCPUs: "2", KeyCPUFreqGovernor: "powersave"}, nil, nil),
			errs: []string{"governor powersave is not allowed on this host (limits.allowed_governors is [performance])"}},
		{name: "exclusive not allowed", spec: testSpec(map[string]string{KeyCPUs: "2"}, nil, nil), cfg: func(r *Rules) { r.Limits.AllowExclusiveCPUs = false },
			errs: []string{"limits.allow_exclusive_cpus is false"}},
		{name: "irq not allowed", spec: testSpec(map[string]string{KeyCPUs: "2", CRIOIRQLoadBalancing: "true"}, nil, nil), cfg: func(r *Rules) { r.Limits.AllowIRQTuning = false },
			errs: []string{`irq-load-balancing.crio.io="disable": IRQ tuning is not allowed`}},
		{name: "c-states not allowed", spec: testSpec(map[string]string{KeyCPUs: "2", KeyCPUCStates: "disable"}, nil, nil), cfg: func(r *Rules) { r.Limits.AllowCStates = false },
			errs: []string{"limits.allow_cstates is false"}},
		{name: "default rules allow none", spec: testSpec(map[string]string{KeyCPUs: "2"}, nil, nil), cfg: func(r *Rules) { *r = DefaultRules() },
			errs: []string{`CPUs 2 may not be tuned on this host (limits.tunable_cpus is "")`}},
		{name: "no environment form", spec: testSpec(nil, []string{"RTSHIM_CPUS=2"}, nil), errs: []string{"RTSHIM_CPUS", "unknown variable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := tuningRules()
			if tc.cfg != nil {
				tc.cfg(rules)
			}
			req, err := ParseRequest(tc.spec, rules)
			if tc.errs != nil {
				if err == nil || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("want InvalidArgument, got %+v, %v", req, err)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got *Tuning
			skipped := ""
			if req != nil {
				got, skipped = req.Tuning, req.TuningSkipped
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tuning %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(skipped, tc.skipped) || (tc.skipped == "") != (skipped == "") {
				t.Errorf("skipped %q, want %q", skipped, tc.skipped)
			}
		})
	}
}

func TestCRIOCPUQuota(t *testing.T) {
	req, err := ParseRequest(podSpec(map[string]string{CRIOCPUQuota: "disable"}, "", 0), tuningRules())
	if err != nil || req == nil || !req.ExemptQuota() || req.NeedsBudget() {
		t.Fatalf("cpu-quota.crio.io=disable on a non-RT container: %+v, %v; want the exemption CRI-O gives", req, err)
	}
	req, err = ParseRequest(podSpec(map[string]string{KeyCPUQuota: "disable"}, "", 0), tuningRules())
	if err != nil || req.ExemptQuota() {
		t.Fatalf("rtshim.io/cpu-quota=disable exempts real-time containers only: %+v, %v", req, err)
	}
	req, err = ParseRequest(podSpec(map[string]string{CRIOCPUQuota: "enable"}, "", 0), tuningRules())
	if err != nil || req != nil {
		t.Fatalf("cpu-quota.crio.io=enable: %+v, %v; want nothing", req, err)
	}
}

func TestTuningLimitsCheck(t *testing.T) {
	r := DefaultRules()
	r.Limits.TunableCPUs, r.Limits.AllowedGovernors = "1-x", []string{"performance", "Power Save"}
	p := strings.Join(r.Check(), "; ")
	for _, w := range []string{`limits.tunable_cpus="1-x"`, `limits.allowed_governors[1]="Power Save"`} {
		if !strings.Contains(p, w) {
			t.Errorf("%q does not contain %q", p, w)
		}
	}
}
