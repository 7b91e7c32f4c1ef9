//go:build linux

package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestDropIn: without a real-time request the rt shim behaves as the stock runc shim.
func TestDropIn(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	for _, rt := range []string{harness.StockRuntime, harness.RTRuntime} {
		t.Run(rt, func(t *testing.T) {
			out := d.MustRun(t, harness.RunOpts{Runtime: rt, Args: []string{"/bin/schedinfo"}})
			if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
				t.Errorf("policy %s, want SCHED_OTHER", s["policy"])
			}
			out, code, err := d.Run(t, harness.RunOpts{Runtime: rt, Args: []string{"/bin/sh", "-c", "echo hi; exit 7"}})
			if err != nil || code != 7 || out != "hi\n" {
				t.Errorf("exit %d, %v, output %q; want 7 and \"hi\\n\"", code, err, out)
			}
			id := "sleeper-" + strings.ReplaceAll(rt, ".", "-")
			d.Start(t, harness.RunOpts{ID: id, Runtime: rt, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")
			if got := d.MustCtr(t, "tasks", "exec", "--exec-id", "e1", id, "/bin/sh", "-c", "echo exec-ok"); got != "exec-ok\n" {
				t.Errorf("exec output %q", got)
			}
			if ps := d.MustCtr(t, "tasks", "ps", id); !strings.Contains(ps, "PID") {
				t.Errorf("tasks ps: %q", ps)
			}
			if m := d.MustCtr(t, "tasks", "metrics", id); !strings.Contains(m, "pids.current") && !strings.Contains(m, "METRIC") {
				t.Errorf("tasks metrics: %q", m)
			}
			d.MustCtr(t, "tasks", "pause", id)
			d.MustCtr(t, "tasks", "resume", id)
			d.Remove(t, id) // kill -s SIGKILL, delete the task and the container
		})
	}
	d.AssertRestored(t, before)
}

// TestPolicyAtFirstInstruction: the program's earliest code already runs with the policy the
// annotations ask for, in an unprivileged container. The stock runc shim ignores them.
func TestPolicyAtFirstInstruction(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	for _, tc := range []struct {
		annotations         map[string]string
		policy, prio, reset string
	}{
		{fifo80, "SCHED_FIFO", "80", "0"},
		{map[string]string{"rtshim.io/policy": "rr", "rtshim.io/priority": "10"}, "SCHED_RR", "10", "0"},
		{map[string]string{"rtshim.io/policy": "Sched_Fifo"}, "SCHED_FIFO", "50", "0"},
		{map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/reset-on-fork": "true"}, "SCHED_FIFO", "50", "1"},
		{map[string]string{"rtshim.io/policy": "SCHED_BATCH", "rtshim.io/nice": "5"}, "SCHED_BATCH", "0", "0"},
	} {
		t.Run(tc.policy+"-"+tc.prio+"-"+tc.reset, func(t *testing.T) {
			s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{Annotations: tc.annotations, Args: []string{"/bin/schedinfo"}}))
			if s["policy"] != tc.policy || s["priority"] != tc.prio || s["reset_on_fork"] != tc.reset {
				t.Errorf("got %v, want policy=%s priority=%s reset_on_fork=%s", s, tc.policy, tc.prio, tc.reset)
			}
			if tc.policy == "SCHED_BATCH" && s["nice"] != "5" {
				t.Errorf("nice %s, want 5", s["nice"])
			}
		})
	}
	t.Run("stock runc shim ignores the request", func(t *testing.T) {
		s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Annotations: fifo80, Args: []string{"/bin/schedinfo"}}))
		if s["policy"] != "SCHED_OTHER" {
			t.Errorf("stock runc shim: policy %s", s["policy"])
		}
	})
	d.AssertRestored(t, before)
}

// TestGrantMode: the program starts unchanged and can switch itself; under the stock shim
// the same privileged program cannot (no RT budget on cgroup v1).
func TestGrantMode(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	grant := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/mode": "grant"}
	out := d.MustRun(t, harness.RunOpts{Annotations: grant, Args: []string{"/bin/schedinfo", "-caps", "-set", "fifo", "30"}})
	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
		t.Errorf("grant mode: started with %s, want SCHED_OTHER", s["policy"])
	}
	if !strings.Contains(out, "set=ok\n") || !strings.Contains(out, "policy=SCHED_FIFO priority=30 ") {
		t.Errorf("grant mode: switching to FIFO 30 failed:\n%s", out)
	}
	if !harness.HasCap(t, out, harness.CapSysNice) {
		t.Errorf("grant mode: CAP_SYS_NICE missing:\n%s", out)
	}
	plain := d.MustRun(t, harness.RunOpts{Args: []string{"/bin/schedinfo", "-caps"}})
	if harness.HasCap(t, plain, harness.CapSysNice) {
		t.Errorf("CAP_SYS_NICE without a request:\n%s", plain)
	}
	harness.RequireRTGroupSched(t)
	ctl := d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Privileged: true, Annotations: grant,
		Args: []string{"/bin/schedinfo", "-set", "fifo", "30"}})

	if !strings.Contains(ctl, "set=error:Operation not permitted") {
		t.Errorf("control: the stock runc shim let a container switch to FIFO:\n%s", ctl)
	}
	d.AssertRestored(t, before)
}

// TestBudgets: the container's budget is in its cgroup and every ancestor while it runs, and
// everything is back to what it was after delete.
func TestBudgets(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	nsFile := harness.CPUV1(d.CgroupPath("")) + "/cpu.rt_runtime_us"

	a := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/rt-runtime-us": "200000"}
	d.Start(t, harness.RunOpts{ID: "a", Annotations: a, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	d.Start(t, harness.RunOpts{ID: "b", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	for file, want := range map[string]int64{d.CPUFile("a", "cpu.rt_runtime_us"): 200000,
		d.CPUFile("b", "cpu.rt_runtime_us"): 100000, nsFile: 300000} {
		if got := harness.ReadInt(t, file); got != want {
			t.Errorf("%s = %d, want %d", file, got, want)
		}
	}
	if c := d.ClaimsOf(t); len(c) != 2 {
		t.Errorf("claims %v, want 2", c)
	}
	// 300000 of the host's 950000 are granted: 800000 more cannot fit.
	treeBefore := harness.SnapshotCPUTree(t)
	big := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": "800000"}
	out, _, err := d.Run(t, harness.RunOpts{ID: "big", Annotations: big, Args: []string{"/bin/schedinfo"}})
	if err == nil {
		t.Fatalf("800000 µs granted on top of 300000:\n%s", out)
	}
	for _, w := range []string{"resource exhausted", "no RT budget", "cgroup /", "800000 µs per 1000000 µs", "µs available"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal does not say %q: %v", w, err)
		}
	}
	t.Logf("refused as expected: %v", err)
	if diff := harness.DiffCPUTree(treeBefore, harness.SnapshotCPUTree(t)); len(diff) > 0 {
		t.Errorf("refused container changed the tree:\n%s", strings.Join(diff, "\n"))
	}
	d.Ctr(t, "containers", "delete", "big")
	d.Remove(t, "a")
	if got := harness.ReadInt(t, nsFile); got != 100000 {
		t.Errorf("after deleting a: %s = %d, want 100000", nsFile, got)
	}
	if harness.Exists(harness.CPUV1(d.CgroupPath("a"))) {
		t.Error("cgroup of a left behind")
	}
	d.Remove(t, "b")
	d.AssertRestored(t, before)
}

// TestBadInput: every bad request fails Create with an error that names the key, the value
// and what is allowed, and leaves nothing behind.
func TestBadInput(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	limited := writeFile(t, d.Dir, "limited.toml", "[limits]\nmax_priority = 60\nmax_rt_runtime_us = 300000\nallowed_policies = [\"fifo\", \"other\"]\n")
	malformed := writeFile(t, d.Dir, "malformed.toml", "[limits]\nmax_priorty = 60\n")
	before := harness.SnapshotCPUTree(t)
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		config      string
		want        []string
	}{
		{"priority 150", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "150"}, "", []string{"rtshim.io/priority", `"150"`, "1", "99"}},
		{"SCHED_FOO", map[string]string{"rtshim.io/policy": "SCHED_FOO"}, "", []string{"rtshim.io/policy", `"SCHED_FOO"`, "SCHED_FIFO"}},
		{"priority=ten", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "ten"}, "", []string{"rtshim.io/priority", `"ten"`}},
		{"negative budget", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": "-5"}, "", []string{"rtshim.io/rt-runtime-us", `"-5"`}},
		{"budget over period", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": "2000000"}, "", []string{"rtshim.io/rt-runtime-us", `"2000000"`}},
		{"unknown mode", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/mode": "force"}, "", []string{"rtshim.io/mode", `"force"`, "apply", "grant"}},
		{"unknown key", map[string]string{"rtshim.io/polcy": "fifo"}, "", []string{"rtshim.io/polcy"}},
		{"over max priority", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "70"}, limited, []string{"rtshim.io/priority", `"70"`, "60"}},
		{"over max budget", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": "400000"}, limited, []string{"rtshim.io/rt-runtime-us", `"400000"`, "300000"}},
		{"policy not allowed", map[string]string{"rtshim.io/policy": "rr"}, limited, []string{"rtshim.io/policy", "SCHED_RR"}},
		{"malformed config", fifo80, malformed, []string{"max_priorty", malformed}},
		{"missing config", fifo80, d.Dir + "/none.toml", []string{"none.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "bad-" + strings.NewReplacer(" ", "-", "=", "-").Replace(tc.name)
			out, _, err := d.Run(t, harness.RunOpts{ID: id, ConfigPath: tc.config, Annotations: tc.annotations, Args: []string{"/bin/schedinfo"}})
			if err == nil {
				t.Fatalf("container ran:\n%s", out)
			}
			for _, w := range append(tc.want, "invalid argument") {
				if w == "invalid argument" && strings.Contains(tc.name, "missing") {
					w = "not found"
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if strings.HasPrefix(out, "policy=") || strings.Contains(out, "\npolicy=") {
				t.Errorf("the program ran:\n%s", out)
			}
			if harness.Exists(harness.CPUV1(d.CgroupPath(id))) {
				t.Errorf("cgroup %s left behind", d.CgroupPath(id))
			}
			d.Ctr(t, "containers", "delete", id)
		})
	}
	d.AssertRestored(t, before)
}

// TestQuotaExemption: a real-time container runs without CFS quota; a non-RT container, and an
// RT one that asks to keep it, keep theirs.
func TestQuotaExemption(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	keep := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/cpu-quota": "keep"}
	for _, tc := range []struct {
		id          string
		runtime     string
		annotations map[string]string
		want        int64
	}{
		{"rt", harness.RTRuntime, fifo80, -1},
		{"plain", harness.RTRuntime, nil, 50000},
		{"keep", harness.RTRuntime, keep, 50000},
		{"control", harness.StockRuntime, fifo80, 50000},
	} {
		d.Start(t, harness.RunOpts{ID: tc.id, Runtime: tc.runtime, Annotations: tc.annotations, CPUQuota: 50000, CPUPeriod: 100000,
			Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")

		if got := harness.ReadInt(t, d.CPUFile(tc.id, "cpu.cfs_quota_us")); got != tc.want {
			t.Errorf("%s: cpu.cfs_quota_us = %d, want %d", tc.id, got, tc.want)
		}
		d.Remove(t, tc.id)
	}
	d.AssertRestored(t, before)
}

// TestExecPolicy: processes exec'd into an RT container run SCHED_OTHER unless the container
// asks for another exec policy.
func TestExecPolicy(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	d.Start(t, harness.RunOpts{ID: "default", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	if s := harness.ParseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "default", "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("exec into FIFO 80 container: %v, want SCHED_OTHER", s)
	}
	rr := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/exec-policy": "SCHED_RR"}
	d.Start(t, harness.RunOpts{ID: "rr", Annotations: rr, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	out, stderr, err := d.Ctr(t, "tasks", "exec", "--exec-id", "x", "rr", "/bin/schedinfo")
	if env.RuncIgnoresScheduler() {
		// runc < 1.2 cannot start an exec'd process with a policy: refused, not half done.
		if err == nil || !strings.Contains(stderr, "rtshim.io/exec-policy=SCHED_RR needs a runtime that applies process.scheduler") {
			t.Errorf("exec-policy SCHED_RR with runc %s: want a refusal, got %v:\n%s%s", env.RuncVersion, err, out, stderr)
		}
	} else if s := harness.ParseSched(t, out); err != nil || s["policy"] != "SCHED_RR" || s["priority"] != "50" {
		t.Errorf("exec with exec-policy SCHED_RR: %v (%v)", s, err)
	}
	d.Remove(t, "default")
	d.Remove(t, "rr")
	d.AssertRestored(t, before)
}

// TestDeadline: SCHED_DEADLINE from annotations, at the first instruction.
func TestDeadline(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	dl := map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=500us,deadline=2ms,period=2ms"}
	s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{Annotations: dl, Args: []string{"/bin/schedinfo"}}))
	if s["policy"] != "SCHED_DEADLINE" || s["runtime_ns"] != "500000" || s["deadline_ns"] != "2000000" || s["period_ns"] != "2000000" {
		t.Errorf("got %v, want SCHED_DEADLINE 500us/2ms/2ms", s)
	}
	d.AssertRestored(t, before)
}

// TestShimKilled: SIGKILL of a running RT container's shim. containerd cleans up the dead shim
// (`containerd-shim-rt-v2 delete`, which runs runc delete --force): the container is gone and
// its budget is back, with no other lifecycle needed.
func TestShimKilled(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	d.Start(t, harness.RunOpts{ID: "victim", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	pid := d.ShimPID(t, "victim")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for harness.Exists(harness.CPUV1(d.CgroupPath("victim"))) || len(d.ClaimsOf(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("15s after the shim was killed: cgroup exists %v, claims %v",
				harness.Exists(harness.CPUV1(d.CgroupPath("victim"))), d.ClaimsOf(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Ctr(t, "tasks", "delete", "victim")
	d.Ctr(t, "containers", "delete", "victim")
	d.AssertRestored(t, before)
}
