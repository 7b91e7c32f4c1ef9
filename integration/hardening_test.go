//go:build linux

package integration

// Issue 10 (hardening) through containerd and the shim: grant mode bounded by the operator's
// limits, small budgets that cannot make a container unkillable, the default limits, claim
// names that cannot collide, a cgroupsPath naming a cgroup in use, an orphan after a double
// fault. runc-rt's part is in runcrt_hardening_test.go, bad inputs in hostile_test.go, what
// needs a kernel where containerd has CAP_SYS_RESOURCE in vmtest/hardening_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/internal/harness"
	"github.com/rtshim/rtshim/rtcontainer"
)

// capSysResource is CAP_SYS_RESOURCE's bit.
const capSysResource = 24

// ownCap reports whether this process (and so the containerd it starts) has capability bit.
func ownCap(t testing.TB, bit uint) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return harness.HasCap(t, strings.ReplaceAll(string(b), "CapEff:\t", "capeff="), bit)
}

// grantTries is what a granted program of the grant tests tries to set itself: above
// limits.max_priority = 10, real-time policies the RT budget does not bound (SCHED_DEADLINE,
// whose bandwidth the v1 budget ignores), a negative nice, then what the limits allow.
var grantTries = []string{"/bin/schedinfo", "-caps",
	"-try", "fifo:11", "-try", "fifo:99", "-try", "deadline:500000:10000000:10000000", "-try", "other:-5",
	"-try", "fifo:10", "-try", "rr:5"}

// TestHardeningGrantBounded (issue 10, point 1): grant mode cannot defeat the limits. Under
// limits below what CAP_SYS_NICE allows, a granted program is bounded by RLIMIT_RTPRIO, which
// runc can set only when containerd has CAP_SYS_RESOURCE: on a host without it (this project's
// CI host: hard RLIMIT_RTPRIO 0) grant mode is refused up front, naming it; the VM tier
// (TestV2GrantBounded) tests the bound itself. limits.allow_grant = false refuses grant mode;
// limits that allow everything grant CAP_SYS_NICE (as TestGrantMode).
func TestHardeningGrantBounded(t *testing.T) {
	env.RequireRoot(t)
	d := rtDaemon{startContainerd(t)}
	strict := writeFile(t, d.Dir, "strict.toml", strictGrantConfig)
	noGrant := writeFile(t, d.Dir, "no-grant.toml", "[limits]\nallow_grant = false\n")
	allowAll := writeFile(t, d.Dir, "allow-all.toml", allowAllConfig)
	grant := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/mode": "grant"}
	before := harness.SnapshotCPUTree(t)

	t.Run("strict limits", func(t *testing.T) {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &rl); err != nil {
			t.Fatal(err)
		}
		canRaise := ownCap(t, capSysResource) || rl.Max >= 10
		t.Logf("containerd: CAP_SYS_RESOURCE %v, hard RLIMIT_RTPRIO %d", ownCap(t, capSysResource), rl.Max)
		out, err := d.ctrRun(t, ctrRunOpts{id: "grant-strict", config: strict, ann: grant, args: grantTries})
		if canRaise {
			// A host where runc can set RLIMIT_RTPRIO: the program runs, bounded by it.
			if err != nil {
				t.Fatal(err)
			}
			checkGrantBounded(t, out)
			return
		}
		if err == nil {
			t.Fatalf("grant mode ran under limits.max_priority = 10 although RLIMIT_RTPRIO cannot be set here; what the program could set:\n%s", out)
		}
		for _, w := range []string{"failed precondition", "rtshim.io/mode=grant", "RLIMIT_RTPRIO=10", "CAP_SYS_RESOURCE"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal does not say %q: %v", w, err)
			}
		}
		t.Logf("refused as expected: %v", err)
		if harness.Exists(harness.CPUV1(d.CgroupPath("grant-strict"))) || claimOfContainer(t, d.Namespace, "grant-strict") != nil {
			t.Error("the refused container left its cgroup or claim")
		}
	})
	t.Run("allow_grant false", func(t *testing.T) {
		out, err := d.ctrRun(t, ctrRunOpts{id: "grant-off", config: noGrant, ann: grant, args: grantTries})
		if err == nil {
			t.Fatalf("grant mode ran with limits.allow_grant = false:\n%s", out)
		}
		for _, w := range []string{"invalid argument", `rtshim.io/mode="grant"`, "limits.allow_grant is false"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal does not say %q: %v", w, err)
			}
		}
		t.Logf("refused as expected: %v", err)
	})
	t.Run("limits that allow everything", func(t *testing.T) {
		out, err := d.ctrRun(t, ctrRunOpts{id: "grant-all", config: allowAll, ann: grant, args: grantTries})
		if err != nil {
			t.Fatal(err)
		}
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("started with %s, want SCHED_OTHER", s["policy"])
		}
		if !harness.HasCap(t, out, harness.CapSysNice) {
			t.Errorf("CAP_SYS_NICE missing:\n%s", out)
		}
		tries := tryResults(out)
		for _, spec := range []string{"fifo:99", "deadline:500000:10000000:10000000", "other:-5"} {
			if tries[spec] != "ok" {
				t.Errorf("with CAP_SYS_NICE, %s: %q, want ok:\n%s", spec, tries[spec], out)
			}
		}
	})
	d.AssertRestored(t, before)
}

// checkGrantBounded checks grantTries' output under strictGrantConfig where RLIMIT_RTPRIO = 10
// holds: the program starts SCHED_OTHER without CAP_SYS_NICE, sets FIFO/RR up to 10 and
// nothing above, no DEADLINE and no negative nice.
func checkGrantBounded(t testing.TB, out string) {
	t.Helper()
	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
		t.Errorf("started with %s, want SCHED_OTHER", s["policy"])
	}
	if harness.HasCap(t, out, harness.CapSysNice) {
		t.Errorf("CAP_SYS_NICE under limits below what it allows:\n%s", out)
	}
	tries := tryResults(out)
	for spec, want := range map[string]string{
		"fifo:11": "error:Operation not permitted", "fifo:99": "error:Operation not permitted",
		"deadline:500000:10000000:10000000": "error:Operation not permitted", "other:-5": "error:Operation not permitted",
		"fifo:10": "ok", "rr:5": "ok",
	} {
		if tries[spec] != want {
			t.Errorf("%s: %q, want %q", spec, tries[spec], want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// A busy loop in a FIFO container with a 20 µs budget: such a thread overruns its budget by up
// to a tick, then is throttled, SIGKILL pending, until it has repaid the overrun 20 µs per
// second (the issue saw 134 s). spinner asks for it in apply mode: the init is FIFO from `runc
// init` on, so its start is throttled too (minutes: the start tests kill it then). grantSpinner
// gets there faster: the program starts SCHED_OTHER, with CAP_SYS_NICE under limits that allow
// everything, and switches itself (grantSpinArgs).
var (
	spinner       = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/rt-runtime-us": "20"}
	grantSpinner  = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/rt-runtime-us": "20", "rtshim.io/mode": "grant"}
	spinArgs      = []string{"/bin/schedinfo", "-spin", "600"} // 10 minutes at most, should everything else fail
	grantSpinArgs = []string{"/bin/schedinfo", "-try", "fifo:50", "-spin", "600"}
)

// tinyBudgetConfig lets a container ask for budgets below a tick; tinyGrantConfig also allows
// everything else, so that grant mode hands out CAP_SYS_NICE.
const (
	tinyBudgetConfig = "[limits]\nmin_rt_runtime_us = 1\n"
	tinyGrantConfig  = allowAllConfig + "min_rt_runtime_us = 1\n"
)

// TestHardeningSmallBudgetKill (issue 10, point 2): a small budget cannot make a container
// unkillable. Under the defaults a budget below one tick is refused, naming the minimum, and a
// FIFO busy loop with the minimum dies at once of `ctr task kill -s SIGKILL`. Under
// limits.min_rt_runtime_us = 1 a throttled FIFO busy loop with 20 µs per second dies promptly
// of it, `ctr task delete` finishes and the budget is back; so does a container killed while its
// throttled init is still starting (through a task handle, as Docker and CRI hold one: ctr's
// own kill first asks the task's state, which waits for the start). runc-rt's kill and delete
// --force: TestHardeningRuncRtSmallBudgetKill.
func TestHardeningSmallBudgetKill(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	var d rtDaemon
	releaseLeftoversOf(t, &d)
	d = rtDaemon{startContainerd(t)}
	ids := []string{"tick", "one-tick", "spin", "starting"}
	t.Cleanup(func() {
		for _, id := range ids {
			demoteCgroup(d.CgroupPath(id))
		}
	})
	tiny := writeFile(t, d.Dir, "tiny.toml", tinyBudgetConfig)
	tinyGrant := writeFile(t, d.Dir, "tiny-grant.toml", tinyGrantConfig)
	contrib, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	defaults := writeFile(t, d.Dir, "rtshim.toml", string(contrib))
	tick := tickUS(t)
	before := harness.SnapshotCPUTree(t)

	t.Run("below a tick refused", func(t *testing.T) {
		_, err := d.ctrRun(t, ctrRunOpts{id: "tick", config: defaults, ann: spinner, args: spinArgs})
		if err == nil {
			t.Fatalf("a 20 µs budget was granted under the defaults (one tick is %d µs)", tick)
		}
		for _, w := range []string{"invalid argument", `rtshim.io/rt-runtime-us="20"`, fmt.Sprintf("%d microseconds", tick),
			"one scheduler tick", "limits.min_rt_runtime_us"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal does not say %q: %v", w, err)
			}
		}
		t.Logf("refused as expected: %v", err)
	})
	t.Run("one tick", func(t *testing.T) {
		ann := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/rt-runtime-us": strconv.FormatInt(tick, 10)}
		d.startIn(t, ctrRunOpts{id: "one-tick", config: defaults, ann: ann, args: spinArgs}, "spinning")
		d.killSpinner(t, "one-tick")
	})
	t.Run("20 µs busy loop", func(t *testing.T) {
		d.startIn(t, ctrRunOpts{id: "spin", config: tinyGrant, ann: grantSpinner, args: grantSpinArgs}, "spinning")
		if b, _ := os.ReadFile(d.OutputFile("spin")); !strings.Contains(string(b), "try=fifo:50 ok") {
			t.Fatalf("the program did not switch itself to FIFO:\n%s", b)
		}
		if got := harness.ReadInt(t, d.CPUFile("spin", "cpu.rt_runtime_us")); got != 20 {
			t.Fatalf("cpu.rt_runtime_us %d, want 20", got)
		}
		d.killSpinner(t, "spin")
	})
	t.Run("20 µs, killed while starting", func(t *testing.T) {
		d.MustCtr(t, "containers", "create", "--runtime", harness.RTRuntime, "--runtime-config-path", tiny,
			"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/rt-runtime-us=20",
			"--rootfs", env.Rootfs, "starting", "/bin/schedinfo", "-spin", "600")
		defer d.removeIn(t, "", "starting")
		ctx, cancel := context.WithTimeout(context.Background(), 2*env.Timeouts.Ctr)
		defer cancel()
		c, err := client.New(d.Address, client.WithDefaultNamespace(d.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctr, err := c.LoadContainer(ctx, "starting")
		if err != nil {
			t.Fatal(err)
		}
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan error, 1)
		go func() { started <- task.Start(ctx) }()
		time.Sleep(2 * time.Second)
		select {
		case err := <-started:
			t.Logf("the start did not wait for the throttled init (%v): killing a running container instead", err)
		default:
		}
		init := int(task.Pid())
		assertThrottled(t, init)
		took, died := killTimed(t, init, d.CgroupPath("starting"), func() error { return task.Kill(ctx, syscall.SIGKILL) })
		switch {
		case !died:
			t.Errorf("SIGKILL while starting: still alive after %v (then demoted by the test)", took.Round(time.Millisecond))
		case took > killBound:
			t.Errorf("SIGKILL while starting took %v, want under %v", took.Round(time.Millisecond), killBound)
		default:
			t.Logf("SIGKILL of the throttled init while starting (20 µs budget): dead after %v", took.Round(time.Millisecond))
		}
		select {
		case err := <-started:
			t.Logf("the start returned: %v", err)
		case <-time.After(killBound):
			t.Errorf("the start had not returned %v after the kill", killBound)
		}
		if _, err := task.Delete(ctx); err != nil {
			t.Errorf("task delete: %v", err)
		}
	})
	d.AssertRestored(t, before)
}

// killSpinner SIGKILLs running spinner container id through ctr, checks that it dies within
// killBound and that `ctr task delete` then finishes within killBound, and deletes it.
func (d rtDaemon) killSpinner(t *testing.T, id string) {
	t.Helper()
	rel := d.CgroupPath(id)
	pid := onlyProcess(t, rel)
	assertThrottled(t, pid)
	took, died := killTimed(t, pid, rel, func() error {
		_, _, err := d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
		return err
	})
	budget := harness.ReadInt(t, d.CPUFile(id, "cpu.rt_runtime_us"))
	switch {
	case !died:
		t.Errorf("SIGKILL: still alive after %v (then demoted by the test)", took.Round(time.Millisecond))
	case took > killBound:
		t.Errorf("SIGKILL took %v, want under %v", took.Round(time.Millisecond), killBound)
	default:
		t.Logf("SIGKILL of the throttled FIFO busy loop (%d µs budget): dead after %v", budget, took.Round(time.Millisecond))
	}
	start := time.Now()
	if _, _, err := d.Ctr(t, "tasks", "delete", id); err != nil {
		t.Errorf("ctr task delete: %v", err)
	} else if took := time.Since(start); took > killBound {
		t.Errorf("ctr task delete took %v", took)
	} else {
		t.Logf("ctr task delete: %v", took.Round(time.Millisecond))
	}
	d.removeIn(t, "", id)
}

// TestHardeningDefaultLimits (issue 10, point 3): the defaults do not let a container, or an
// image, take the host: an image's RTSHIM_ environment alone asks for nothing; priority above
// 90, a negative nice and a budget above 400000 µs are refused naming the limit; a pod's
// containers together hold at most limits.max_pod_rt_runtime_us. Both forms of the defaults:
// contrib/rtshim.toml and a config that sets nothing.
func TestHardeningDefaultLimits(t *testing.T) {
	env.RequireRoot(t)
	var d rtDaemon
	releaseLeftoversOf(t, &d)
	d = rtDaemon{startContainerd(t)}
	contrib, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	for i, cfg := range []struct{ name, body string }{{"contrib rtshim.toml", string(contrib)}, {"empty config", emptyConfig}} {
		t.Run(cfg.name, func(t *testing.T) {
			config := writeFile(t, d.Dir, fmt.Sprintf("defaults-%d.toml", i), cfg.body)
			before := harness.SnapshotCPUTree(t)
			t.Run("image environment", func(t *testing.T) {
				id := fmt.Sprintf("env-%d", i)
				d.startIn(t, ctrRunOpts{id: id, config: config, args: []string{"/bin/schedinfo", "-sleep", "300"},
					env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=99", "RTSHIM_RT_RUNTIME_US=950000"}}, "policy=")
				defer d.removeIn(t, "", id)
				b, _ := os.ReadFile(d.OutputFile(id))
				if s := harness.ParseSched(t, string(b)); s["policy"] != "SCHED_OTHER" {
					t.Errorf("RTSHIM_ variables alone got %s %s, want SCHED_OTHER", s["policy"], s["priority"])
				}
				if c := claimOfContainer(t, d.Namespace, id); c != nil {
					t.Errorf("RTSHIM_ variables alone got a claim: %+v", *c)
				}
				if got := harness.ReadInt(t, d.CPUFile(id, "cpu.rt_runtime_us")); got != 0 {
					t.Errorf("RTSHIM_ variables alone got a budget of %d µs", got)
				}
			})
			for _, tc := range []struct {
				name string
				ann  map[string]string
				want []string
			}{
				{"priority 99", fifoWith("rtshim.io/priority", "99"), []string{`rtshim.io/priority="99"`, "limits.max_priority is 90"}},
				{"nice -20", map[string]string{"rtshim.io/policy": "other", "rtshim.io/nice": "-20"}, []string{`rtshim.io/nice="-20"`, "limits.min_nice is 0"}},
				{"budget 950000", fifoWith("rtshim.io/rt-runtime-us", "950000"), []string{`rtshim.io/rt-runtime-us="950000"`, "limits.max_rt_runtime_us is 400000"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					out, err := d.ctrRun(t, ctrRunOpts{id: fmt.Sprintf("limit-%d", i), config: config, ann: tc.ann, args: []string{"/bin/schedinfo"}})
					if err == nil {
						t.Fatalf("ran: %s", out)
					}
					for _, w := range append(tc.want, "invalid argument") {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("refusal does not say %q: %v", w, err)
						}
					}
					t.Logf("refused as expected: %v", err)
				})
			}
			t.Run("pod", func(t *testing.T) { d.checkPodLimit(t, config, fmt.Sprintf("pod-%d", i)) })
			d.AssertRestored(t, before)
		})
	}
}

// checkPodLimit runs RT containers of one Kubernetes pod (CRI's container-type annotation, the
// cgroups under one pod cgroup, as the kubelet lays them out) under the default
// limits.max_pod_rt_runtime_us = 400000: 300000 µs fits, 300000 µs more does not, 100000 µs
// more does.
func (d rtDaemon) checkPodLimit(t *testing.T, config, pod string) {
	podCg := d.CgroupPath(pod)
	run := func(id string, budget int) error {
		ann := fifoWith("rtshim.io/rt-runtime-us", strconv.Itoa(budget), "io.kubernetes.cri.container-type", "container")
		_, err := d.ctrRun(t, ctrRunOpts{id: pod + "-" + id, config: config, cgroup: podCg + "/" + id, ann: ann,
			detach: true, args: []string{"/bin/schedinfo", "-sleep", "300"}})
		if err == nil {
			t.Cleanup(func() { d.removeIn(t, "", pod+"-"+id) })
			harness.WaitForFile(t, d.OutputFile(pod+"-"+id), "policy=", env.Timeouts.Output)
		}
		return err
	}
	if err := run("a", 300000); err != nil {
		t.Fatal(err)
	}
	errB := run("b", 300000)
	if err := errB; err == nil {
		t.Errorf("the pod's containers hold 600000 µs (limits.max_pod_rt_runtime_us is 400000); pod cgroup %s has %d",
			podCg, harness.ReadInt(t, harness.CPUV1(podCg)+"/cpu.rt_runtime_us"))
	} else {
		for _, w := range []string{"resource exhausted", "limits.max_pod_rt_runtime_us", "400000", podCg} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal does not say %q: %v", w, err)
			}
		}
		t.Logf("refused as expected: %v", err)
		if harness.Exists(harness.CPUV1(podCg + "/b")) {
			t.Errorf("the refused container's cgroup %s/b is left", podCg)
		}
	}
	if err := run("c", 100000); err != nil {
		t.Errorf("100000 µs more, 400000 in all: %v", err)
	} else if got := harness.ReadInt(t, harness.CPUV1(podCg)+"/cpu.rt_runtime_us"); errB != nil && got != 400000 {
		t.Errorf("pod cgroup %s holds %d µs, want 400000", podCg, got)
	}
}

// TestHardeningClaimNames (issue 10, point 7): containerd namespace N with id b.c and namespace
// N.b with id c (both valid containerd identifiers) have claims of their own: deleting one
// leaves the other's budget and claim, and after both the tree is as before.
func TestHardeningClaimNames(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	var d rtDaemon
	nsB := func() string { return d.Namespace + ".b" }
	releaseLeftoversOf(t, &d, ".b")
	t.Cleanup(func() { cleanNamespace(t, nsB()) })
	d = rtDaemon{startContainerd(t)}
	config := writeFile(t, d.Dir, "rtshim.toml", emptyConfig)
	before := harness.SnapshotCPUTree(t)
	type ctr struct{ ns, id string }
	a, b := ctr{d.Namespace, "b.c"}, ctr{nsB(), "c"}
	for _, c := range []ctr{a, b} {
		d.startIn(t, ctrRunOpts{ns: c.ns, id: c.id, config: config, ann: fifo80, args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	}
	budget := func(c ctr) int64 {
		return harness.ReadInt(t, harness.CPUV1("/"+c.ns+"/"+c.id)+"/cpu.rt_runtime_us")
	}
	files := map[string]bool{}
	for _, c := range []ctr{a, b} {
		claim := claimOfContainer(t, c.ns, c.id)
		if claim == nil {
			t.Errorf("no claim of %s/%s", c.ns, c.id)
			continue
		}
		files[claim.File] = true
		if got := budget(c); got != 100000 {
			t.Errorf("%s/%s: budget %d, want 100000", c.ns, c.id, got)
		}
	}
	if len(files) != 2 {
		t.Errorf("claim files %v: want one for each container", slices.Sorted(maps.Keys(files)))
	}

	d.removeIn(t, a.ns, a.id)
	if claim := claimOfContainer(t, b.ns, b.id); claim == nil {
		t.Errorf("deleting %s/%s took the claim of %s/%s", a.ns, a.id, b.ns, b.id)
	}
	if claimOfContainer(t, a.ns, a.id) != nil {
		t.Errorf("the claim of deleted %s/%s is left", a.ns, a.id)
	}
	if got := budget(b); got != 100000 {
		t.Errorf("%s/%s: budget %d after %s/%s was deleted, want 100000", b.ns, b.id, got, a.ns, a.id)
	}
	if got := harness.ReadInt(t, harness.CPUV1("/"+b.ns)+"/cpu.rt_runtime_us"); got < 100000 {
		t.Errorf("%s: budget %d after %s/%s was deleted, want at least 100000 for %s", b.ns, got, a.ns, a.id, b.id)
	}
	d.removeIn(t, b.ns, b.id)
	assertCPUTreeBack(t, before, a.ns, b.ns)
	for _, c := range claimRecords(t) {
		if c.Namespace == a.ns || c.Namespace == b.ns {
			t.Errorf("claim left: %s (%s/%s)", c.File, c.Namespace, c.ID)
		}
	}
}

// cleanNamespace removes what a second containerd namespace ns of a test daemon leaves once its
// containers are deleted: its cgroups (the daemon's teardown removes only its own namespace's)
// and its runc state directory.
func cleanNamespace(t *testing.T, ns string) {
	if err := harness.KillCgroupTree("/"+ns, 10*time.Second); err != nil {
		t.Error(err)
	}
	for _, err := range harness.RemoveCgroupTree("/" + ns) {
		t.Error(err)
	}
	if err := os.RemoveAll(filepath.Join(harness.RunContainerdDir, "runc", ns)); err != nil {
		t.Error(err)
	}
}

// TestHardeningCgroupsPathInUse (issue 10, point 8): a linux.cgroupsPath (ctr --cgroup) naming
// another running container's cgroup, or its namespace's (an ancestor of it), is refused before
// anything is written: the victim's budget is unchanged, and no claim or cgroup of the refused
// container remains.
func TestHardeningCgroupsPathInUse(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	var d rtDaemon
	releaseLeftoversOf(t, &d)
	d = rtDaemon{startContainerd(t)}
	config := writeFile(t, d.Dir, "rtshim.toml", emptyConfig)
	before := harness.SnapshotCPUTree(t)
	d.startIn(t, ctrRunOpts{id: "victim", config: config, ann: fifo80, args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	victim := onlyProcess(t, d.CgroupPath("victim"))
	tree, cgroups := harness.SnapshotCPUTree(t), cgroupSet(t)
	for i, tc := range []struct {
		name, cgroup string
		want         []string
	}{
		{"the victim's cgroup", d.CgroupPath("victim"), []string{"processes", "an RT budget (cpu.rt_runtime_us=100000)"}},
		{"its namespace's cgroup", d.CgroupPath(""), []string{"child cgroups (victim)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("intruder-%d", i)
			cg := strings.TrimSuffix(tc.cgroup, "/")
			out, err := d.ctrRun(t, ctrRunOpts{id: id, config: config, cgroup: cg,
				ann: fifoWith("rtshim.io/rt-runtime-us", "50000"), args: []string{"/bin/schedinfo"}})
			if err == nil {
				t.Errorf("a container ran in cgroup %s:\n%s", cg, out)
			} else {
				for _, w := range append(tc.want, "invalid argument", "linux.cgroupsPath names cgroup "+cg) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal does not say %q: %v", w, err)
					}
				}
				t.Logf("refused as expected: %v", err)
			}
			if diff := harness.DiffCPUTree(tree, harness.SnapshotCPUTree(t)); len(diff) > 0 {
				t.Errorf("the cpu tree changed:\n%s", strings.Join(diff, "\n"))
			}
			if diff := cgroupSetDiff(cgroups, cgroupSet(t)); len(diff) > 0 {
				t.Errorf("cgroups changed: %v", diff)
			}
			if c := claimOfContainer(t, d.Namespace, id); c != nil {
				t.Errorf("the refused container's claim is left: %+v", *c)
			}
			if a, err := unix.SchedGetAttr(victim, 0); err != nil || a.Policy != unix.SCHED_FIFO || a.Priority != 80 {
				t.Errorf("the victim (pid %d): %+v, %v; want SCHED_FIFO 80", victim, a, err)
			}
		})
	}
	d.removeIn(t, "", "victim")
	d.AssertRestored(t, before)
}

// TestHardeningOrphanReap (issue 10, point 9): a double fault — the shim SIGKILLed, then the
// `containerd-shim-rt-v2 delete` cleanup containerd runs for it killed too (the failpoints
// build's cleanup-before step) — leaves the container's init running with its policy and
// budget and no shim. `rtshim status` marks it ORPHANED with the command that finishes it,
// `rtshim doctor` warns (rtshim.orphans), and `rtshim reap` (refused while the shim lives)
// kills it and gives everything back.
func TestHardeningOrphanReap(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	fpDir := os.Getenv("RTSHIM_FP_BIN_DIR")
	if fpDir == "" {
		t.Fatal("RTSHIM_FP_BIN_DIR is not set: run `make integration`, which builds the failpoint shim")
	}
	rtshim := filepath.Join(env.BinDir, "rtshim")
	var d rtDaemon
	releaseLeftoversOf(t, &d)
	cfgDir := t.TempDir()
	config := writeFile(t, cfgDir, "rtshim.toml", fmt.Sprintf("state_dir = %q\n", harness.StateDir))
	d = rtDaemon{env.StartContainerd(t, harness.Options{PathDir: fpDir, Env: []string{"RTSHIM_CONFIG=" + config}})}
	t.Cleanup(func() { demoteCgroup(d.CgroupPath("orphan")) })
	before := harness.SnapshotCPUTree(t)
	ann := maps.Clone(fifo80)
	ann[failpoint.AnnotationPrefix+rtcontainer.StepCleanupBefore] = "kill"
	d.startIn(t, ctrRunOpts{id: "orphan", ann: ann, args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	rel := d.CgroupPath("orphan")
	init := onlyProcess(t, rel)
	// rtshim runs runc (reap's `runc delete`) from PATH: the one the shims use.
	toolEnv := append(os.Environ(), "PATH="+filepath.Dir(env.Runc)+":"+os.Getenv("PATH"))
	tool := func(args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
		defer cancel()
		var out, errOut strings.Builder
		cmd := exec.CommandContext(ctx, rtshim, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = toolEnv, &out, &errOut
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("rtshim %s: %v", strings.Join(args, " "), err)
		}
		return out.String(), errOut.String(), code
	}
	reap := []string{"reap", d.Namespace, "orphan", "--address", d.Address, "--state-dir", harness.StateDir}
	if out, stderr, code := tool(reap...); code == 0 || !strings.Contains(stderr, "is alive") {
		t.Errorf("rtshim reap while the shim lives: exit %d, want a refusal naming the live owner:\n%s%s", code, out, stderr)
	}

	shim := d.ShimPID(t, "orphan")
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// containerd notices, runs the cleanup, which is killed, and forgets the task.
	deadline := time.Now().Add(goneTimeout)
	for {
		tasks, _, err := d.Ctr(t, "tasks", "ls", "-q")
		if err == nil && !slices.Contains(strings.Fields(tasks), "orphan") && !harness.ProcessAlive(shim) && len(cleanupProcesses(d)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the shim was killed: tasks %q (%v), shim alive %v, cleanups %v", goneTimeout, tasks, err, harness.ProcessAlive(shim), cleanupProcesses(d))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // nothing else gives it back
	if !harness.ProcessAlive(init) {
		t.Fatalf("the init (pid %d) is gone: the double fault did not orphan it (was the cleanup killed? failpoint build: %s)", init, fpDir)
	}
	if a, err := unix.SchedGetAttr(init, 0); err != nil || a.Policy != unix.SCHED_FIFO || a.Priority != 80 {
		t.Errorf("orphaned init: %+v, %v; want SCHED_FIFO 80", a, err)
	}
	if got := harness.ReadInt(t, d.CPUFile("orphan", "cpu.rt_runtime_us")); got != 100000 {
		t.Errorf("orphan's budget %d, want 100000 (still held)", got)
	}
	if claimOfContainer(t, d.Namespace, "orphan") == nil {
		t.Error("the orphan's claim is gone, though its budget is held")
	}

	out, stderr, code := tool("status", "--state-dir", harness.StateDir)
	wantReap := "rtshim reap " + d.Namespace + " orphan"
	if code != 0 || !strings.Contains(out, "ORPHANED") || !strings.Contains(out, wantReap) {
		t.Errorf("rtshim status: exit %d, want the orphan marked ORPHANED with %q:\n%s%s", code, wantReap, out, stderr)
	}
	out, _, _ = tool("status", "--json", "--state-dir", harness.StateDir)
	var st struct {
		Containers []struct {
			Namespace, ID string
			Orphan        bool `json:"orphan"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Errorf("rtshim status --json: %v:\n%s", err, out)
	}
	if !slices.ContainsFunc(st.Containers, func(c struct {
		Namespace, ID string
		Orphan        bool `json:"orphan"`
	}) bool {
		return c.Namespace == d.Namespace && c.ID == "orphan" && c.Orphan
	}) {
		t.Errorf("rtshim status --json: no orphan %s/orphan:\n%s", d.Namespace, out)
	}
	out, stderr, _ = tool("doctor", "--json", "--config", config)
	var doc struct {
		Findings []struct{ ID, Severity, Saw, Fix string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Errorf("rtshim doctor --json: %v:\n%s%s", err, out, stderr)
	}
	i := slices.IndexFunc(doc.Findings, func(f struct{ ID, Severity, Saw, Fix string }) bool { return f.ID == "rtshim.orphans" })
	if i < 0 {
		t.Errorf("rtshim doctor: no rtshim.orphans finding:\n%s", out)
	} else if f := doc.Findings[i]; f.Severity != "warn" || !strings.Contains(f.Saw, d.Namespace+"/orphan") || !strings.Contains(f.Fix, wantReap) {
		t.Errorf("rtshim doctor: %+v; want a warning naming %s/orphan with the fix %q", f, d.Namespace, wantReap)
	}

	start := time.Now()
	if out, stderr, code := tool(reap...); code != 0 {
		t.Errorf("rtshim reap: exit %d:\n%s%s", code, out, stderr)
	} else {
		t.Logf("rtshim reap took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	}
	if harness.ProcessAlive(init) {
		t.Errorf("the orphaned init (pid %d) still runs after rtshim reap", init)
	}
	if p := filepath.Join(harness.RunContainerdDir, "runc", d.Namespace, "orphan"); harness.Exists(p) {
		t.Errorf("runc's state %s left after rtshim reap", p)
	}
	d.Ctr(t, "containers", "delete", "orphan")
	d.AssertRestored(t, before)
}

// cleanupProcesses lists the `containerd-shim-rt-v2 ... delete` processes containerd runs for
// d's dead shims.
func cleanupProcesses(d rtDaemon) []int {
	var pids []int
	for _, pid := range harness.ProcessesUnder(d.Dir) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		args := strings.Split(string(b), "\x00")
		if err == nil && strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") && slices.Contains(args, "delete") {
			pids = append(pids, pid)
		}
	}
	return pids
}
