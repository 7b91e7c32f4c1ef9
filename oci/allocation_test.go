package oci

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestAllocation: a container's rtshim.io/rt-bandwidth allocation is its budget; asking for
// more is refused with both numbers; with require_allocation a pod's RT container needs one.
func TestAllocation(t *testing.T) {
	pod := func(kv ...string) map[string]string {
		m := map[string]string{KeyPolicy: "fifo", AnnotationContainerType: "container"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	require := func(r *Rules) { r.Limits.RequireAllocation = true }
	runRequestCases(t, []requestCase{
		{name: "allocation is the budget", ann: pod(KeyAllocation, "100"), want: rtReq(PolicyFIFO, 50, func(r *Request) { r.AllocatedUS = 100000 })},
		{name: "allocation over another period", ann: pod(KeyAllocation, "100"), cfg: func(r *Rules) { r.Defaults.RTPeriodUS, r.Defaults.RTRuntimeUS = 500000, 10000 },
			want: rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS, r.RTPeriodUS, r.AllocatedUS = 50000, 500000, 50000 })},
		{name: "asking within the allocation", ann: pod(KeyAllocation, "100", KeyRTRuntimeUS, "50000"),
			want: rtReq(PolicyFIFO, 50, func(r *Request) { r.AllocatedUS = 100000 })},
		{name: "asking for more", ann: pod(KeyAllocation, "100", KeyRTRuntimeUS, "200000"),
			errs: []string{`rtshim.io/rt-runtime-us="200000": asks 200000 µs per 1000000 µs, above the container's allocation of rtshim.io/rt-bandwidth: 100 (100000 µs per 1000000 µs)`}},
		{name: "no allocation required", ann: pod(), cfg: require,
			errs: []string{"needs an allocation of rtshim.io/rt-bandwidth", "resources.limits {rtshim.io/rt-bandwidth: N}", "(100 for 100000 µs per 1000000 µs)"}},
		{name: "required, held", ann: pod(KeyAllocation, "20"), cfg: require, want: rtReq(PolicyFIFO, 50, func(r *Request) { r.RTRuntimeUS, r.AllocatedUS = 20000, 20000 })},
		{name: "required only in pods", ann: map[string]string{KeyPolicy: "fifo"}, cfg: require, want: rtReq(PolicyFIFO, 50)},
		{name: "bad allocation", ann: pod(KeyAllocation, "0"), errs: []string{`allocation.rtshim.io/rt-bandwidth="0": must be a number of rtshim.io/rt-bandwidth units from 1 to 1000`}},
		{name: "allocation below a tick", ann: pod(KeyAllocation, "2"), cfg: func(r *Rules) { r.Limits.MinRTRuntimeUS = 0 },
			errs: []string{"rtshim.io/rt-bandwidth: 2 is 2000 µs per 1000000 µs, below the smallest RT budget allowed here, 4000 µs"}},
		{name: "allocation above the container limit", ann: pod(KeyAllocation, "500"), cfg: func(r *Rules) { r.Limits.MaxRTRuntimeUS = 400000 },
			errs: []string{"rtshim.io/rt-bandwidth: 500 is 500000 µs per 1000000 µs, above limits.max_rt_runtime_us (400000)"}},
		{name: "allocation without a policy", ann: map[string]string{KeyAllocation: "10", AnnotationContainerType: "container"}, cfg: require,
			errs: []string{"holds rtshim.io/rt-bandwidth but asks for no real-time policy"}},
	})
	// A pod annotation cannot forge it: the key is outside rtshim.io/ (CRI's pod_annotations
	// globs for rtshim.io/* do not pass it), and it is not an rtshim.io/ key either.
	if strings.HasPrefix(KeyAllocation, Prefix) {
		t.Errorf("%s is under %s: pod_annotations = [%q] would let a pod set it", KeyAllocation, Prefix, Prefix+"*")
	}
	_, err := ParseRequest(testSpec(map[string]string{KeyPolicy: "fifo", "rtshim.io/rt-bandwidth": "900"}, nil, nil), permissiveRules())
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("rtshim.io/rt-bandwidth as an annotation: %v, want the unknown-key error", err)
	}
}

func TestDeadlineAllocation(t *testing.T) {
	d := &Deadline{Runtime: 1500 * 1000, Deadline: 10 * 1000 * 1000, Period: 10 * 1000 * 1000} // 1.5 ms per 10 ms: 150 ms/s
	if n := DeadlineUnits(*d); n != 150 {
		t.Errorf("DeadlineUnits = %d, want 150", n)
	}
	if n := DeadlineUnits(Deadline{Runtime: 1001 * 1000, Period: 1000 * 1000 * 1000}); n != 2 {
		t.Errorf("1.001 ms per second: %d units, want 2 (rounded up)", n)
	}
	r := &Request{Sched: Sched{Policy: PolicyDeadline, Deadline: d}}
	pod := func(kv ...string) *specs.Spec {
		s := testSpec(map[string]string{AnnotationContainerType: "container"}, nil, nil)
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
		return s
	}
	strict := permissiveRules()
	strict.Limits.RequireAllocation = true
	for _, tc := range []struct {
		spec  *specs.Spec
		rules *Rules
		units int64
		err   string
	}{
		{pod(KeyDLAllocation, "150"), strict, 150, ""},
		{pod(KeyDLAllocation, "149"), permissiveRules(), 0, "rtshim.io/dl-bandwidth: 149 does not cover the SCHED_DEADLINE parameters, which need 150"},
		{pod(), strict, 0, "needs an allocation of rtshim.io/dl-bandwidth on this node (limits.require_allocation is true): add resources.limits {rtshim.io/dl-bandwidth: 150}"},
		{pod(), permissiveRules(), 0, ""},
	} {
		n, err := CheckDeadlineAllocation(r, tc.spec, tc.rules)
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) || tc.err == "" && (err != nil || n != tc.units) {
			t.Errorf("%v: %d, %v; want %d, %q", tc.spec.Annotations, n, err, tc.units, tc.err)
		}
	}
}
