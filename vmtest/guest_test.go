//go:build linux

package vmtest

// The checks of the cgroup v2 tier, run inside the VM in this order (TestV2NoResidue last).

import (
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/harness"
)

var (
	fifo80 = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80"}
	// criContainer marks an application container of a pod: its cgroup's parent is the pod's.
	criContainer = map[string]string{"io.kubernetes.cri.container-type": "container"}
)

// with merges annotation maps.
func with(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// TestV2Kernel: the VM is what the tier claims: PREEMPT_RT, cgroup v2 only, every controller
// enabled, no RT group scheduling (so real-time tasks are allowed in any cgroup).
func TestV2Kernel(t *testing.T) {
	guest(t)
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	version, _ := os.ReadFile("/proc/sys/kernel/version")
	t.Logf("kernel %s %s", strings.TrimSpace(string(release)), strings.TrimSpace(string(version)))
	if rt, err := os.ReadFile("/sys/kernel/realtime"); err != nil || strings.TrimSpace(string(rt)) != "1" {
		t.Errorf("not a PREEMPT_RT kernel: /sys/kernel/realtime %q, %v", rt, err)
	}
	hier, err := cgroupfix.FindCPU("/proc")
	if err != nil || !hier.V2 || hier.Mount != harness.CgroupRoot {
		t.Errorf("cpu controller: %+v, %v; want cgroup v2 at %s", hier, err, harness.CgroupRoot)
	}
	enabled := strings.Fields(harness.ReadCgroup(t, "/", "cgroup.subtree_control"))
	for _, c := range []string{"cpu", "cpuset", "memory", "pids", "io"} {
		if !slices.Contains(enabled, c) {
			t.Errorf("controller %s not enabled in the root's subtree_control %v", c, enabled)
		}
	}
	config := "/boot/config-" + strings.TrimSpace(string(release))
	if _, err := os.Stat(config); err != nil {
		t.Errorf("the kernel config must be where the shim looks for it: %v", err)
	}
	if refused, _ := cgroupfix.V2RefusesRT("/proc", "/boot"); refused {
		t.Error("V2RefusesRT: this kernel has no RT_GROUP_SCHED")
	}
}

// TestV2StockControl: the stock runc shim ignores rtshim's annotations, and an unprivileged
// container cannot switch itself to RT; a privileged one can on this kernel.
func TestV2StockControl(t *testing.T) {
	d := guest(t)
	s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{ID: "stock", Runtime: harness.StockRuntime, Annotations: fifo80, Args: []string{"/bin/schedinfo"}}))
	if s["policy"] != "SCHED_OTHER" {
		t.Errorf("stock runc shim: policy %s, want SCHED_OTHER", s["policy"])
	}
	out := d.MustRun(t, harness.RunOpts{ID: "stock-set", Runtime: harness.StockRuntime, Args: []string{"/bin/schedinfo", "-set", "fifo", "10"}})
	if !strings.Contains(out, "set=error:Operation not permitted") {
		t.Errorf("unprivileged stock container switched to FIFO:\n%s", out)
	}
	out = d.MustRun(t, harness.RunOpts{ID: "stock-priv", Runtime: harness.StockRuntime, Privileged: true, Args: []string{"/bin/schedinfo", "-set", "fifo", "10"}})
	if !strings.Contains(out, "set=ok") {
		t.Errorf("privileged stock container could not switch to FIFO on cgroup v2 without RT_GROUP_SCHED:\n%s", out)
	}
	assertNoResidue(t, "stock", "stock-set", "stock-priv")
}

// TestV2PolicyAtFirstInstruction: the program's first instruction already runs with the
// policy the annotations ask for, in an unprivileged container.
func TestV2PolicyAtFirstInstruction(t *testing.T) {
	d := guest(t)
	for _, tc := range []struct {
		id          string
		annotations map[string]string
		policy      string
		prio        string
	}{
		{"fifo", fifo80, "SCHED_FIFO", "80"},
		{"rr", map[string]string{"rtshim.io/policy": "rr", "rtshim.io/priority": "10"}, "SCHED_RR", "10"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{ID: tc.id, Annotations: tc.annotations, Args: []string{"/bin/schedinfo"}}))
			if s["policy"] != tc.policy || s["priority"] != tc.prio {
				t.Errorf("got %v, want %s %s", s, tc.policy, tc.prio)
			}
		})
	}
	assertNoResidue(t, "fifo", "rr")
}

// TestV2Deadline: SCHED_DEADLINE from annotations at the first instruction, in a container
// whose CPUs span the root domain (no cpuset restriction), as the kernel requires. Pinned to
// fewer CPUs (as Kubernetes' static CPU manager does), it is refused up front with the reason
// instead of runc's bare "operation not permitted".
func TestV2Deadline(t *testing.T) {
	d := guest(t)
	dl := map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=500us,deadline=2ms,period=2ms"}
	t.Run("all CPUs", func(t *testing.T) {
		s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{ID: "deadline", Annotations: dl, Args: []string{"/bin/schedinfo"}}))
		if s["policy"] != "SCHED_DEADLINE" || s["runtime_ns"] != "500000" || s["deadline_ns"] != "2000000" || s["period_ns"] != "2000000" {
			t.Errorf("got %v, want SCHED_DEADLINE 500us/2ms/2ms", s)
		}
		assertNoResidue(t, "deadline")
	})
	t.Run("pinned to CPU 1", func(t *testing.T) {
		out, _, err := d.Run(t, harness.RunOpts{ID: "deadline-pinned", Annotations: dl, CPUSetCPUs: "1", Args: []string{"/bin/schedinfo"}})
		d.Ctr(t, "containers", "delete", "deadline-pinned")
		if err == nil {
			t.Fatalf("a SCHED_DEADLINE container pinned to CPU 1 ran:\n%s", out)
		}
		for _, w := range []string{"failed precondition", "SCHED_DEADLINE", "root domain spans CPUs 0-", "cpuset.cpus.partition"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error does not say %q:\n%v", w, err)
			}
		}
		t.Logf("refused as expected: %v", err)
		assertNoResidue(t, "deadline-pinned")
	})
}

// TestV2GrantMode: the program starts SCHED_OTHER with CAP_SYS_NICE and switches itself.
func TestV2GrantMode(t *testing.T) {
	d := guest(t)
	grant := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/mode": "grant"}
	out := d.MustRun(t, harness.RunOpts{ID: "grant", Annotations: grant, Args: []string{"/bin/schedinfo", "-caps", "-set", "fifo", "30"}})
	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
		t.Errorf("grant mode: started with %s, want SCHED_OTHER", s["policy"])
	}
	if !harness.HasCap(t, out, harness.CapSysNice) {
		t.Errorf("grant mode: CAP_SYS_NICE missing:\n%s", out)
	}
	if !strings.Contains(out, "set=ok\n") || !strings.Contains(out, "policy=SCHED_FIFO priority=30 ") {
		t.Errorf("grant mode: switching to FIFO 30 failed:\n%s", out)
	}
	assertNoResidue(t, "grant")
}

// TestV2ExecPolicy: a process exec'd into a FIFO container runs SCHED_OTHER unless the
// container asks for another exec policy.
func TestV2ExecPolicy(t *testing.T) {
	d := guest(t)
	d.Start(t, harness.RunOpts{ID: "exec", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "600"}}, "policy=SCHED_FIFO")
	if s := harness.ParseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "exec", "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("exec into a FIFO 80 container: %v, want SCHED_OTHER", s)
	}
	rr := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/exec-policy": "SCHED_RR"}
	d.Start(t, harness.RunOpts{ID: "exec-rr", Annotations: rr, Args: []string{"/bin/schedinfo", "-sleep", "600"}}, "policy=SCHED_FIFO")
	if s := harness.ParseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "exec-rr", "/bin/schedinfo")); s["policy"] != "SCHED_RR" || s["priority"] != "50" {
		t.Errorf("exec with exec-policy SCHED_RR: %v", s)
	}
	d.Remove(t, "exec")
	d.Remove(t, "exec-rr")
	assertNoResidue(t, "exec", "exec-rr")
}

// TestV2QuotaExemption: an RT container's cgroup has no CFS quota (cpu.max "max <period>");
// a non-RT container, an RT one that keeps its quota, and the stock shim's keep theirs. The
// shim's claim names the cgroup the kernel reports for the init.
func TestV2QuotaExemption(t *testing.T) {
	d := guest(t)
	keep := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/cpu-quota": "keep"}
	for _, tc := range []struct {
		id          string
		runtime     string
		annotations map[string]string
		want        string
	}{
		{"quota-rt", harness.RTRuntime, fifo80, "max 100000"},
		{"quota-plain", harness.RTRuntime, nil, "50000 100000"},
		{"quota-keep", harness.RTRuntime, keep, "50000 100000"},
		{"quota-stock", harness.StockRuntime, fifo80, "50000 100000"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			d.Start(t, harness.RunOpts{ID: tc.id, Runtime: tc.runtime, Annotations: tc.annotations, CPUQuota: 50000, CPUPeriod: 100000,
				Args: []string{"/bin/schedinfo", "-sleep", "600"}}, "policy=")
			cg := harness.CgroupOf(t, d.PID(t, tc.id))
			if want := "/" + namespace + "/" + tc.id; cg != want {
				t.Errorf("init's cgroup %s, want %s", cg, want)
			}
			if got := harness.CPUMax(t, cg); got != tc.want {
				t.Errorf("cpu.max = %q, want %q", got, tc.want)
			}
			if c := d.ClaimOf(t, tc.id); c != nil && c.Leaf != cg {
				t.Errorf("claim names cgroup %s, the init is in %s", c.Leaf, cg)
			}
			d.Remove(t, tc.id)
			assertNoResidue(t, tc.id)
		})
	}
}

// TestV2PodExemption: RT containers of a pod (CRI containers whose cgroup's parent is the
// pod's) lift the pod-level quota while any of them runs; it comes back after the last one.
// A pod with only non-RT containers keeps its quota.
func TestV2PodExemption(t *testing.T) {
	d := guest(t)
	const rtPod, plainPod, podQuota = "/pod-rt", "/pod-plain", "50000 100000"
	harness.MakePod(t, rtPod, podQuota)
	harness.MakePod(t, plainPod, podQuota)
	sleep := []string{"/bin/schedinfo", "-sleep", "600"}
	rt := with(fifo80, criContainer)

	d.Start(t, harness.RunOpts{ID: "pod-rt1", Annotations: rt, Cgroup: rtPod + "/rt1", CPUQuota: 20000, CPUPeriod: 100000, Args: sleep}, "policy=SCHED_FIFO")
	d.Start(t, harness.RunOpts{ID: "pod-rt2", Annotations: rt, Cgroup: rtPod + "/rt2", CPUQuota: 20000, CPUPeriod: 100000, Args: sleep}, "policy=SCHED_FIFO")
	d.Start(t, harness.RunOpts{ID: "pod-plain", Annotations: criContainer, Cgroup: plainPod + "/plain", CPUQuota: 20000, CPUPeriod: 100000, Args: sleep}, "policy=SCHED_OTHER")

	for id, leaf := range map[string]string{"pod-rt1": rtPod + "/rt1", "pod-rt2": rtPod + "/rt2"} {
		if cg := harness.CgroupOf(t, d.PID(t, id)); cg != leaf {
			t.Errorf("%s: init's cgroup %s, want %s", id, cg, leaf)
		}
		if got := harness.CPUMax(t, leaf); got != "max 100000" {
			t.Errorf("%s: container cpu.max %q, want \"max 100000\"", id, got)
		}
		if c := d.ClaimOf(t, id); c == nil || c.Leaf != leaf || c.Pod != rtPod {
			t.Errorf("%s: claim %+v, want leaf %s pod %s", id, c, leaf, rtPod)
		}
	}
	if got := harness.CPUMax(t, rtPod); got != "max 100000" {
		t.Errorf("RT pod cpu.max %q while its RT containers run, want \"max 100000\"", got)
	}
	if got := harness.CPUMax(t, plainPod); got != podQuota {
		t.Errorf("non-RT pod cpu.max %q, want %q", got, podQuota)
	}
	if got := harness.CPUMax(t, plainPod+"/plain"); got != "20000 100000" {
		t.Errorf("non-RT container cpu.max %q, want \"20000 100000\"", got)
	}

	d.Remove(t, "pod-rt1")
	if got := harness.CPUMax(t, rtPod); got != "max 100000" {
		t.Errorf("RT pod cpu.max %q while pod-rt2 still runs, want \"max 100000\"", got)
	}
	d.Remove(t, "pod-rt2")
	if got := harness.CPUMax(t, rtPod); got != podQuota {
		t.Errorf("RT pod cpu.max %q after its RT containers were deleted, want %q back", got, podQuota)
	}
	d.Remove(t, "pod-plain")
	for _, cg := range []string{rtPod + "/rt1", rtPod + "/rt2", plainPod + "/plain"} {
		if harness.CgroupExists(cg) {
			t.Errorf("cgroup %s left behind", cg)
		}
	}
	assertNoResidue(t)
}

// TestV2UpdateKeepsExemption: a task Update that sets a quota on an RT container keeps it
// exempt; on a non-RT container it works as with runc.
func TestV2UpdateKeepsExemption(t *testing.T) {
	d := guest(t)
	for _, tc := range []struct {
		id          string
		annotations map[string]string
		want        string
	}{
		{"update-rt", fifo80, "max 100000"},
		{"update-plain", nil, "20000 100000"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			d.Start(t, harness.RunOpts{ID: tc.id, Annotations: tc.annotations, Args: []string{"/bin/schedinfo", "-sleep", "600"}}, "policy=")
			if err := d.UpdateCPU(t, tc.id, 20000, 100000); err != nil {
				t.Fatalf("update: %v", err)
			}
			if got := harness.CPUMax(t, harness.CgroupOf(t, d.PID(t, tc.id))); got != tc.want {
				t.Errorf("cpu.max = %q after update, want %q", got, tc.want)
			}
			d.Remove(t, tc.id)
			assertNoResidue(t, tc.id)
		})
	}
}

// TestV2BadInput: a bad request fails Create with invalid argument, naming the key and the
// value, and leaves nothing behind.
func TestV2BadInput(t *testing.T) {
	d := guest(t)
	for _, tc := range []struct {
		id          string
		annotations map[string]string
		want        []string
	}{
		{"bad-priority", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "150"}, []string{"rtshim.io/priority", `"150"`, "99"}},
		{"bad-policy", map[string]string{"rtshim.io/policy": "SCHED_FOO"}, []string{"rtshim.io/policy", `"SCHED_FOO"`}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			out, _, err := d.Run(t, harness.RunOpts{ID: tc.id, Annotations: tc.annotations, Args: []string{"/bin/schedinfo"}})
			d.Ctr(t, "containers", "delete", tc.id)
			if err == nil {
				t.Fatalf("container ran:\n%s", out)
			}
			for _, w := range append(tc.want, "invalid argument") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			t.Logf("refused as expected: %v", err)
			assertNoResidue(t, tc.id)
		})
	}
}

// TestV2RefusedRTGroupSched: a kernel built with RT_GROUP_SCHED refuses RT tasks in every
// non-root cgroup v2. The shim detects that from the kernel config and fails Create up front
// with the fix. This kernel has no RT_GROUP_SCHED, so the test puts a config that has it where
// the shim reads it (/boot/config-<release>), and puts the real one back after.
func TestV2RefusedRTGroupSched(t *testing.T) {
	d := guest(t)
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	config := "/boot/config-" + strings.TrimSpace(string(release))
	real, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(config, real, 0o644); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(config, []byte(strings.Replace(string(real), "# CONFIG_RT_GROUP_SCHED is not set", "CONFIG_RT_GROUP_SCHED=y", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := d.Run(t, harness.RunOpts{ID: "refused", Annotations: fifo80, Args: []string{"/bin/schedinfo"}})
	d.Ctr(t, "containers", "delete", "refused")
	if err == nil {
		t.Fatalf("a FIFO container ran although the kernel config says RT_GROUP_SCHED:\n%s", out)
	}
	for _, w := range []string{"failed precondition", "rtshim.io/policy=SCHED_FIFO", "rt_group_sched=0"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
	t.Logf("refused as expected: %v", err)
	// Non-RT containers are not affected.
	s := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{ID: "refused-batch", Annotations: map[string]string{"rtshim.io/policy": "batch"},
		Args: []string{"/bin/schedinfo"}}))
	if s["policy"] != "SCHED_BATCH" {
		t.Errorf("non-RT container: %v", s)
	}
	assertNoResidue(t, "refused", "refused-batch")
}

// TestV2MixedLoad: /bin/mixedapp (integration/testdata/mixedapp.c: an RT loop that waits each
// cycle on a SCHED_OTHER helper thread, next to SCHED_OTHER burner threads) in a FIFO 80
// container three ways: no quota; cpu.max 50% exempted by the shim (the default); the same
// quota kept (rtshim.io/cpu-quota=keep). Kept, the helper is throttled once the burners spent
// the quota and the RT loop's worst case approaches the throttled part of the 100 ms period;
// exempted, the kernel never throttles it. Software emulation makes every latency slower and
// noisier than on hardware: the test asserts on cpu.max and nr_throttled, and only logs them.
func TestV2MixedLoad(t *testing.T) {
	d := guest(t)
	rt := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80", "rtshim.io/reset-on-fork": "true"}
	runs := []struct {
		id          string
		annotations map[string]string
		quota       bool
		cpuMax      string
	}{
		{"mixed-unthrottled", rt, false, "max 100000"},
		{"mixed-exempt", rt, true, "max 100000"},
		{"mixed-kept", with(rt, map[string]string{"rtshim.io/cpu-quota": "keep"}), true, "50000 100000"},
	}
	worst := map[string]int64{}
	for _, r := range runs {
		o := harness.RunOpts{ID: r.id, Annotations: r.annotations, Args: []string{"/bin/mixedapp", "-d", "5", "-b", "2"}}
		if r.quota {
			o.CPUQuota, o.CPUPeriod = 50000, 100000
		}
		d.Start(t, o, "cycles=")
		cg := "/" + namespace + "/" + r.id
		if got := harness.CPUMax(t, cg); got != r.cpuMax {
			t.Errorf("%s: cpu.max %q, want %q", r.id, got, r.cpuMax)
		}
		throttled := nrThrottled(t, cg)
		if r.cpuMax == "max 100000" && throttled != 0 {
			t.Errorf("%s: nr_throttled %d, want 0 (no quota)", r.id, throttled)
		} else if r.cpuMax != "max 100000" && throttled == 0 {
			t.Errorf("%s: nr_throttled 0: the kept quota never throttled the app", r.id)
		}
		out, _ := os.ReadFile(d.OutputFile(r.id))
		res := parseMixed(t, string(out))
		if res["policy"] != "SCHED_FIFO" {
			t.Errorf("%s: RT loop ran %s", r.id, res["policy"])
		}
		worst[r.id], _ = strconv.ParseInt(res["max_us"], 10, 64)
		t.Logf("%s: nr_throttled %d; cycles=%s missed=%s p50=%sus p99=%sus max=%sus", r.id, throttled, res["cycles"], res["missed"],
			res["p50_us"], res["p99_us"], res["max_us"])
		d.Remove(t, r.id)
	}
	// Kept: throttled for the ~75 ms of each period left after two burners spent 50 ms, a
	// lower bound the host's load cannot break. Exempted, the kernel's nr_throttled = 0 above
	// is the proof; how close its latencies come to the unthrottled run's is emulated time
	// under the host's load, logged above and measured on the host by make bench
	// (BenchmarkQuota, goal worst case ≤ 2 × unthrottled).
	if worst["mixed-kept"] < 20000 {
		t.Errorf("quota kept: worst case %d us, want the throttling to show (>= 20 ms)", worst["mixed-kept"])
	}
	assertNoResidue(t, "mixed-unthrottled", "mixed-exempt", "mixed-kept")
}

// parseMixed reads mixedapp's header ("mixedapp policy=...") and summary ("cycles=... max_us=...")
// lines into one map.
func parseMixed(t testing.TB, out string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "mixedapp" || strings.HasPrefix(f[0], "cycles=")) {
			for _, field := range f {
				if k, v, ok := strings.Cut(field, "="); ok {
					kv[k] = v
				}
			}
		}
	}
	if kv["max_us"] == "" {
		t.Fatalf("no mixedapp summary in:\n%s", out)
	}
	return kv
}

// TestV2NoResidue runs last: nothing of any test is left: containers, their cgroups, the
// shim's records.
func TestV2NoResidue(t *testing.T) {
	d := guest(t)
	if out := d.MustCtr(t, "containers", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %s", out)
	}
	ents, _ := os.ReadDir(path.Join(harness.CgroupRoot, namespace))
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("cgroup %s left behind", path.Join("/", namespace, e.Name()))
		}
	}
	assertNoResidue(t)
}

// nrThrottled is cpu.stat's nr_throttled of cgroup cg: how many periods its quota throttled it.
func nrThrottled(t testing.TB, cg string) int64 {
	t.Helper()
	for line := range strings.Lines(harness.ReadCgroup(t, cg, "cpu.stat")) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "nr_throttled "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("cgroup %s: cpu.stat nr_throttled %q: %v", cg, v, err)
			}
			return n
		}
	}
	t.Fatalf("cgroup %s: no nr_throttled in cpu.stat", cg)
	return 0
}
