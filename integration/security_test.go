//go:build linux

package integration

import (
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestOperatorBounds: the operator's config bounds what a container may ask for; a request
// above each bound is refused, and switched-off request channels are ignored.
func TestOperatorBounds(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	dir := t.TempDir()
	strict := writeFile(t, dir, "strict.toml", `[limits]
allowed_policies = ["SCHED_FIFO", "SCHED_OTHER"]
max_priority = 40
max_rt_runtime_us = 50000
honor_env = true
[defaults]
priority = 10
rt_runtime_us = 20000
`)
	deaf := writeFile(t, dir, "deaf.toml", "[limits]\nhonor_annotations = false\nhonor_env = false\n")
	before := harness.SnapshotCPUTree(t)
	for _, tc := range []struct {
		name   string
		config string
		ann    map[string]string
		env    []string
		refuse []string // error must contain these; nil: must run
		policy string   // when it runs
	}{
		{"priority at the bound", strict, fifoWith("rtshim.io/priority", "40"), nil, nil, "SCHED_FIFO"},
		{"priority above the bound", strict, fifoWith("rtshim.io/priority", "41"), nil, []string{`rtshim.io/priority="41"`, "40"}, ""},
		{"budget at the bound", strict, fifoWith("rtshim.io/rt-runtime-us", "50000"), nil, nil, "SCHED_FIFO"},
		{"budget above the bound", strict, fifoWith("rtshim.io/rt-runtime-us", "50001"), nil, []string{`rtshim.io/rt-runtime-us="50001"`, "50000"}, ""},
		{"policy not allowed", strict, map[string]string{"rtshim.io/policy": "rr"}, nil, []string{"SCHED_RR", "allowed_policies"}, ""},
		{"deadline not allowed", strict, map[string]string{"rtshim.io/policy": "deadline",
			"rtshim.io/deadline": "runtime=100us,deadline=1ms,period=1ms"}, nil, []string{"SCHED_DEADLINE", "allowed_policies"}, ""},
		{"env above the bound", strict, nil, []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=90"}, []string{`RTSHIM_PRIORITY="90"`}, ""},
		{"annotations ignored", deaf, fifoWith("rtshim.io/priority", "90"), nil, nil, "SCHED_OTHER"},
		{"environment ignored", deaf, nil, []string{"RTSHIM_POLICY=fifo"}, nil, "SCHED_OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code, err := d.Run(t, harness.RunOpts{ConfigPath: tc.config, Annotations: tc.ann, Env: tc.env, Args: []string{"/bin/schedinfo"}})
			if tc.refuse != nil {
				if err == nil {
					t.Fatalf("ran:\n%s", out)
				}
				for _, w := range append(tc.refuse, "invalid argument") {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal does not say %q: %v", w, err)
					}
				}
				return
			}
			if err != nil || code != 0 {
				t.Fatalf("exit %d, %v:\n%s", code, err, out)
			}
			if s := harness.ParseSched(t, out); s["policy"] != tc.policy {
				t.Errorf("policy %s, want %s", s["policy"], tc.policy)
			}
		})
	}
	d.AssertRestored(t, before)
}

// TestGrantAddsOnlySysNice: grant mode's capabilities are apply mode's plus CAP_SYS_NICE,
// nothing else.
func TestGrantAddsOnlySysNice(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	capsOf := func(ann map[string]string) uint64 {
		return harness.CapEff(t, d.MustRun(t, harness.RunOpts{Annotations: ann, Args: []string{"/bin/schedinfo", "-caps"}}))
	}
	apply := capsOf(fifo80)
	grant := capsOf(map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/mode": "grant"})
	if diff := apply ^ grant; diff != 1<<harness.CapSysNice || grant&(1<<harness.CapSysNice) == 0 {
		t.Errorf("grant mode capabilities %#x, apply mode %#x: differ by %#x, want exactly CAP_SYS_NICE (%#x)",
			grant, apply, diff, uint64(1)<<harness.CapSysNice)
	}
}
