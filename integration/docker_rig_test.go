//go:build linux && docker

package integration

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// dockerRig is a dockerd whose runtime "rt" is rtshim (either form), on containerd d, with
// the image dockerImage imported. before is the cpu cgroup tree before dockerd started.
type dockerRig struct {
	k      *Dockerd
	d      *harness.Daemon
	before map[string]string
}

// fifo70 is how the Docker tests ask: docker run --annotation (Docker >= 24) or -e.
var (
	fifo70Annotations = []string{"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/priority=70"}
	fifo70Env         = []string{"-e", "RTSHIM_POLICY=SCHED_FIFO", "-e", "RTSHIM_PRIORITY=70"}
)

// run is docker run --network none with args; stdout, and stderr in err if it fails.
func (r *dockerRig) run(t testing.TB, args ...string) (string, string, error) {
	t.Helper()
	return r.k.Docker(t, append([]string{"run", "--network", "none"}, args...)...)
}

func (r *dockerRig) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := r.run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checks are what a Docker user does with an RT container: run it (annotations, environment,
// Docker's own RT flags), look at it, exec into it, update its CPU limit, restart, stop, start
// and remove it, restart dockerd under it. After each step that ends a container, its budget,
// quota change, claim and cgroup must be gone.
func (r *dockerRig) checks(t *testing.T) {
	t.Run("annotations", func(t *testing.T) {
		out, stderr, err := r.run(t, append(append([]string{"--rm", "--runtime=rt"}, fifo70Annotations...), dockerImage, "/bin/schedinfo")...)
		if err != nil {
			t.Fatal(err)
		}
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("docker run --runtime=rt --annotation: %v, want SCHED_FIFO 70 at the first instruction", s)
		}
		if stderr != "" {
			t.Errorf("stderr of the container: %s", stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		out := r.mustRun(t, append(append([]string{"--rm", "--runtime=rt"}, fifo70Env...), dockerImage, "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("docker run --runtime=rt -e RTSHIM_...: %v, want SCHED_FIFO 70 at the first instruction", s)
		}
	})
	t.Run("default runtime", func(t *testing.T) {
		out := r.mustRun(t, append(append([]string{"--rm"}, fifo70Annotations...), dockerImage, "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("docker run with the default runtime: %v, want SCHED_OTHER", s)
		}
	})
	t.Run("lifecycle", r.lifecycle)
	t.Run("dockerd restart", r.dockerdRestart)
	t.Run("cpu-rt-runtime", r.cpuRTRuntime)
	r.d.AssertRestored(t, r.before)
}

// lifecycle: a running RT container with a CPU limit, docker exec, docker update --cpus,
// docker restart, stop, start and rm -f.
func (r *dockerRig) lifecycle(t *testing.T) {
	id := strings.TrimSpace(r.mustRun(t, append(append([]string{"-d", "--runtime=rt", "--cpus", "1", "--stop-timeout", "1"},
		fifo70Annotations...), dockerImage, "/bin/schedinfo", "-sleep", "600")...))
	pid := r.checkStarted(t, id)
	if s := harness.ParseSched(t, r.k.MustDocker(t, "exec", id, "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("docker exec: %v, want SCHED_OTHER (the exec policy)", s)
	}

	// The control: a container of the default runtime gets Docker's quota, and update changes it.
	ctl := strings.TrimSpace(r.mustRun(t, "-d", "--cpus", "1", "--stop-timeout", "1", dockerImage, "/bin/schedinfo", "-sleep", "600"))
	ctlCgroup := harness.CPUV1(r.cgroup(t, ctl))
	if q := harness.ReadInt(t, filepath.Join(ctlCgroup, "cpu.cfs_quota_us")); q != 100000 {
		t.Errorf("default runtime, --cpus 1: cpu.cfs_quota_us %d, want 100000", q)
	}
	r.k.MustDocker(t, "update", "--cpus", "0.5", ctl)
	r.k.MustDocker(t, "update", "--cpus", "0.5", id)
	if q := harness.ReadInt(t, filepath.Join(ctlCgroup, "cpu.cfs_quota_us")); q != 50000 {
		t.Errorf("default runtime, docker update --cpus 0.5: cpu.cfs_quota_us %d, want 50000", q)
	}
	if q := harness.ReadInt(t, filepath.Join(harness.CPUV1(r.cgroup(t, id)), "cpu.cfs_quota_us")); q != -1 {
		t.Errorf("rt runtime, docker update --cpus 0.5: cpu.cfs_quota_us %d, want -1 (exempt)", q)
	}
	r.k.MustDocker(t, "rm", "-f", ctl)

	ancestors := r.ancestorBudgets(t, id)
	r.k.MustDocker(t, "restart", "-t", "1", id)
	if again := r.checkStarted(t, id); again == pid {
		t.Errorf("docker restart: the init is still pid %d", pid)
	}
	if now := r.ancestorBudgets(t, id); now != ancestors {
		t.Errorf("ancestors' budgets after docker restart: %s, before it: %s", now, ancestors)
	}

	r.k.MustDocker(t, "stop", "-t", "1", id)
	r.checkGone(t, id, "docker stop")
	r.k.MustDocker(t, "start", id)
	r.checkStarted(t, id)
	r.k.MustDocker(t, "rm", "-f", id)
	r.checkGone(t, id, "docker rm -f")
}

// dockerdRestart: dockerd restarted (SIGTERM, no live-restore) with two RT containers running,
// one with --restart=always: dockerd stops both, which leaves nothing of them; once it is back,
// the first stays stopped, the second runs again holding one budget.
func (r *dockerRig) dockerdRestart(t *testing.T) {
	args := append([]string{"-d", "--runtime=rt", "--stop-timeout", "1"}, fifo70Annotations...)
	once := strings.TrimSpace(r.mustRun(t, append(args, dockerImage, "/bin/schedinfo", "-sleep", "600")...))
	always := strings.TrimSpace(r.mustRun(t, append(append(args, "--restart=always"), dockerImage, "/bin/schedinfo", "-sleep", "600")...))
	r.checkStarted(t, once)
	old := r.checkStarted(t, always)
	// A stopped dockerd has stopped its containers and deleted their tasks: nothing of them is
	// left even before it starts again.
	r.k.Stop(t)
	for _, id := range []string{once, always} {
		if c := claimsNaming(t, id); len(c) > 0 {
			t.Errorf("dockerd stopped: rtshim state of %s left: %v", id, c)
		}
		if dirs, err := harness.CgroupTree("/" + r.d.Namespace + "/docker/" + id); err != nil || len(dirs) > 0 {
			t.Errorf("dockerd stopped: cgroups of %s left: %v %v", id, dirs, err)
		}
	}
	r.d.AssertRestored(t, r.before)
	r.k.Start(t)
	if st := strings.TrimSpace(r.k.MustDocker(t, "inspect", "-f", "{{.State.Status}}", once)); st != "exited" {
		t.Errorf("after the dockerd restart: container without a restart policy is %s, want exited", st)
	}
	r.checkGone(t, once, "a dockerd restart")
	deadline := time.Now().Add(30 * time.Second)
	for strings.TrimSpace(r.k.MustDocker(t, "inspect", "-f", "{{.State.Running}}", always)) != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("container with --restart=always not running 30s after the dockerd restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if pid := r.checkStarted(t, always); pid == old {
		t.Errorf("--restart=always container: init pid %d survived the dockerd restart", pid)
	}
	r.k.MustDocker(t, "rm", "-f", once, always)
	r.checkGone(t, always, "docker rm -f")
}

// cpuRTRuntime: Docker's own RT flags, with no daemon flag (dockerd --cpu-rt-runtime) and no
// rtshim request: --cpu-rt-runtime is the budget, and the program switches itself with the
// CAP_SYS_NICE of --cap-add=sys_nice, as users type it: `chrt -f 80 app` (the test rootfs's
// /bin/chrt, integration/testdata/chrt.c: Debian's busybox has none).
func (r *dockerRig) cpuRTRuntime(t *testing.T) {
	flags := []string{"--cpu-rt-runtime=95000", "--cap-add=sys_nice"}
	chrt := []string{dockerImage, "/bin/chrt", "-f", "80", "/bin/schedinfo"}
	t.Run("own switch", func(t *testing.T) {
		out := r.mustRun(t, append(append([]string{"--rm", "--runtime=rt"}, flags...), chrt...)...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "80" {
			t.Errorf("chrt -f 80 through rtshim: %v, want SCHED_FIFO 80", s)
		}
	})
	t.Run("budget", func(t *testing.T) {
		// --cpus: the CFS quota of a container that holds a budget is lifted too.
		id := strings.TrimSpace(r.mustRun(t, append(append([]string{"-d", "--runtime=rt", "--cpus", "0.5"}, flags...), append(chrt, "-sleep", "600")...)...))
		if s := harness.ParseSched(t, r.waitLogs(t, id, "policy=")); s["policy"] != "SCHED_FIFO" || s["priority"] != "80" {
			t.Errorf("chrt -f 80 through rtshim: %v, want SCHED_FIFO 80", s)
		}
		r.checkRunning(t, id, 80, 95000)
		r.k.MustDocker(t, "rm", "-f", id)
		r.checkGone(t, id, "docker rm -f")
	})
	t.Run("cpu-rt-period", func(t *testing.T) {
		// The budget per the container's own period, which runc writes into its cgroup.
		id := strings.TrimSpace(r.mustRun(t, append([]string{"-d", "--runtime=rt", "--cpu-rt-period=500000", "--cpu-rt-runtime=47500",
			"--cap-add=sys_nice"}, append(chrt, "-sleep", "600")...)...))
		r.waitLogs(t, id, "policy=SCHED_FIFO priority=80 ")
		r.checkRunning(t, id, 80, 47500)
		if p := harness.ReadInt(t, filepath.Join(harness.CPUV1(r.cgroup(t, id)), "cpu.rt_period_us")); p != 500000 {
			t.Errorf("--cpu-rt-period=500000: cpu.rt_period_us %d", p)
		}
		r.k.MustDocker(t, "rm", "-f", id)
		r.checkGone(t, id, "docker rm -f")
	})
	t.Run("stock runtime", func(t *testing.T) {
		// What users see today: runc writes the budget into a cgroup whose parent has none.
		_, stderr, err := r.run(t, append(append([]string{"--rm"}, flags...), chrt...)...)
		if err == nil || !strings.Contains(stderr, "cpu.rt_runtime_us") || !strings.Contains(stderr, "invalid argument") {
			t.Errorf("stock runtime with --cpu-rt-runtime: want runc's EINVAL writing cpu.rt_runtime_us, got %v", err)
		}
		t.Logf("stock runtime with --cpu-rt-runtime: %s", strings.TrimSpace(stderr))
		// And without the flag: no budget, so chrt gets EPERM.
		_, stderr, err = r.run(t, append([]string{"--rm", "--cap-add=sys_nice"}, chrt...)...)
		if err == nil || !strings.Contains(stderr, "chrt: failed to set pid 0's policy: Operation not permitted") {
			t.Errorf("stock runtime, --cap-add=sys_nice only: want chrt's EPERM, got %v", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		_, stderr, err := r.run(t, append([]string{"--rm", "--runtime=rt", "--cpu-rt-runtime=950000", "--cap-add=sys_nice"}, chrt...)...)
		if err == nil {
			t.Fatal("--cpu-rt-runtime=950000 (above limits.max_rt_runtime_us) ran")
		}
		for _, want := range []string{`linux.resources.cpu.realtimeRuntime="950000"`, "(docker run --cpu-rt-runtime)"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the refusal does not say %q:\n%s", want, stderr)
			}
		}
		t.Logf("refused as expected: %s", strings.TrimSpace(stderr))
	})
	r.d.AssertRestored(t, r.before)
}

// cgroup is container id's cpu cgroup (from its init), which must be where dockerd's
// --cgroup-parent puts it.
func (r *dockerRig) cgroup(t testing.TB, id string) string {
	t.Helper()
	cg := harness.CPUCgroupOf(t, r.pid(t, id))
	if want := "/" + r.d.Namespace + "/docker/" + id; cg != want {
		t.Errorf("container %s is in cgroup %s, want %s", id, cg, want)
	}
	return cg
}

func (r *dockerRig) pid(t testing.TB, id string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(r.k.MustDocker(t, "inspect", "-f", "{{.State.Pid}}", id)))
	if err != nil || pid <= 0 {
		t.Fatalf("docker inspect %s: pid %d, %v", id, pid, err)
	}
	return pid
}

// checkRunning checks running RT container id: its init is SCHED_FIFO at prio, its cgroup
// holds budget and each ancestor at least that, its CFS quota is lifted, rtshim
// holds a claim. It returns the init's pid.
func (r *dockerRig) checkRunning(t testing.TB, id string, prio, budget int64) int {
	t.Helper()
	pid := r.pid(t, id)
	if policy, p := procSched(t, pid); policy != 1 || int64(p) != prio {
		t.Errorf("container %s: init policy %d priority %d, want 1 (SCHED_FIFO) %d", id, policy, p, prio)
	}
	cg := r.cgroup(t, id)
	if got := harness.ReadInt(t, filepath.Join(harness.CPUV1(cg), "cpu.rt_runtime_us")); got != budget {
		t.Errorf("cpu.rt_runtime_us of %s: %d, want %d", cg, got, budget)
	}
	for p := filepath.Dir(cg); p != "/"; p = filepath.Dir(p) {
		if got := harness.ReadInt(t, filepath.Join(harness.CPUV1(p), "cpu.rt_runtime_us")); got < budget {
			t.Errorf("ancestor %s of %s: cpu.rt_runtime_us %d, want at least %d (granted top-down)", p, cg, got, budget)
		}
	}
	if q := harness.ReadInt(t, filepath.Join(harness.CPUV1(cg), "cpu.cfs_quota_us")); q != -1 {
		t.Errorf("cpu.cfs_quota_us of %s: %d, want -1 (the RT container's quota lifted)", cg, q)
	}
	if len(claimsNaming(t, id)) == 0 {
		t.Errorf("no rtshim claim of container %s while it runs", id)
	}
	return pid
}

// checkStarted checks that container id's /bin/schedinfo started SCHED_FIFO 70 (its first
// line, printed before main) and returns its pid, after checkRunning.
func (r *dockerRig) checkStarted(t testing.TB, id string) int {
	t.Helper()
	if s := harness.ParseSched(t, r.waitLogs(t, id, "policy=")); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
		t.Errorf("container %s started with %v, want SCHED_FIFO 70", id, s)
	}
	return r.checkRunning(t, id, 70, 100000)
}

// ancestorBudgets is cpu.rt_runtime_us of each ancestor of id's cgroup, as one string.
func (r *dockerRig) ancestorBudgets(t testing.TB, id string) string {
	t.Helper()
	var out []string
	for p := filepath.Dir(r.cgroup(t, id)); p != "/"; p = filepath.Dir(p) {
		out = append(out, fmt.Sprintf("%s=%d", p, harness.ReadInt(t, filepath.Join(harness.CPUV1(p), "cpu.rt_runtime_us"))))
	}
	return strings.Join(out, " ")
}

// checkGone checks that container id, ended by what, left no claim and no cgroup in any
// hierarchy; when no container runs any more, that the cpu tree is as before (no budget or
// quota change left).
func (r *dockerRig) checkGone(t testing.TB, id, what string) {
	t.Helper()
	if c := claimsNaming(t, id); len(c) > 0 {
		t.Errorf("after %s: rtshim state of %s left in %s: %v", what, id, harness.StateDir, c)
	}
	if dirs, err := harness.CgroupTree("/" + r.d.Namespace + "/docker/" + id); err != nil || len(dirs) > 0 {
		t.Errorf("after %s: cgroups of %s left: %v %v", what, id, dirs, err)
	}
	if strings.TrimSpace(r.k.MustDocker(t, "ps", "-q")) == "" {
		r.d.AssertRestored(t, r.before)
	}
}

// waitLogs waits up to 10s for container id's output to contain want and returns it.
func (r *dockerRig) waitLogs(t testing.TB, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := r.k.MustDocker(t, "logs", id)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker logs %s: want %q within 10s, got:\n%s", id, want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
