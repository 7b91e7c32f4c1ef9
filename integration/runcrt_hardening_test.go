//go:build linux

package integration

// Issue 10 (hardening) through runc-rt, driven directly as an engine drives a runc binary
// (Docker's path runtimes, Podman, CRI-O): bundles made from the test rootfs with a config.json
// the test writes, runc's state under the test's own --root.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/internal/harness"
)

// runcRT runs runc-rt the way an engine does, with RTSHIM_CONFIG (config) and RTSHIM_RUNC in
// its environment and --root under a temp dir of its own (/tmp/rtshim-it-*, so that a killed
// run's leftovers are swept like a daemon's). Containers run in cgroup /<ns>/<id>.
type runcRT struct {
	dir, ns, root string
	config        string // RTSHIM_CONFIG of the next commands
	cmds          atomic.Int64
}

// newRuncRT makes the temp dir and registers its cleanup: every container is gone (runc-rt
// delete --force, then runc's), then what a daemon's teardown removes, then any claim or
// runc-rt record left is a failure and is given back.
func newRuncRT(t *testing.T, configBody string) *runcRT {
	t.Helper()
	env.RequireRoot(t)
	dir, err := harness.NewRunDir()
	if err != nil {
		t.Fatal(err)
	}
	r := &runcRT{dir: dir, ns: filepath.Base(dir), root: filepath.Join(dir, "runc")}
	releaseLeftovers(t, func(ns string) bool { return ns == r.claimNS() }, func() []string { return []string{r.ns} })
	t.Cleanup(func() {
		for _, err := range harness.TeardownRunDir(dir) {
			t.Errorf("cleanup: %v", err)
		}
		for _, rec := range wrapperRecords(r.ns) {
			t.Errorf("runc-rt record left: %s", rec)
			os.Remove(rec)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	r.config = r.writeConfig(t, "rtshim.toml", configBody)
	return r
}

// claimNS is the namespace of runc-rt's claims: runc's --root.
func (r *runcRT) claimNS() string { return "runc:" + r.root }

func (r *runcRT) writeConfig(t testing.TB, name, body string) string {
	return writeFile(t, r.dir, filepath.Join("config", name), body)
}

// cgroup is container id's cgroup (its linux.cgroupsPath).
func (r *runcRT) cgroup(id string) string { return "/" + r.ns + "/" + id }

func (r *runcRT) cpuFile(id, file string) string {
	return filepath.Join(harness.CPUV1(r.cgroup(id)), file)
}

// log is where container id's stdout and stderr go (create's, which the init inherits).
func (r *runcRT) log(id string) string { return filepath.Join(r.dir, "logs", id+".log") }

// bundle writes a bundle for container id running args from the test rootfs: the template of
// `runc spec`, without a terminal, in cgroup r.cgroup(id), changed by mods.
func (r *runcRT) bundle(t testing.TB, id string, args []string, mods ...func(*specs.Spec)) string {
	t.Helper()
	b := filepath.Join(r.dir, "bundles", id)
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(env.Runc, "spec", "--bundle", b).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	var s specs.Spec
	data, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root = &specs.Root{Path: env.Rootfs, Readonly: true}
	s.Hostname = "runc-rt"
	s.Linux.CgroupsPath = r.cgroup(id)
	for _, m := range mods {
		m(&s)
	}
	if data, err = json.Marshal(&s); err == nil {
		err = os.WriteFile(filepath.Join(b, "config.json"), data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withAnnotations adds annotations to a spec.
func withAnnotations(ann map[string]string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for k, v := range ann {
			s.Annotations[k] = v
		}
	}
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int // -1: it could not run, or timed out
}

func (res result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
}

// exec runs bin with args, stdin, and stdout to the file stdoutPath ("" for a new temp file),
// stderr to a temp file, with the Ctr timeout. Files, not pipes: a container that create starts
// inherits them, and would keep a pipe, and the command's Wait, open. Safe for goroutines.
func (r *runcRT) exec(environ []string, bin, stdin, stdoutPath string, args ...string) result {
	n := r.cmds.Add(1)
	if stdoutPath == "" {
		stdoutPath = filepath.Join(r.dir, "cmds", fmt.Sprintf("%d.out", n))
	}
	errPath := filepath.Join(r.dir, "cmds", fmt.Sprintf("%d.err", n))
	fail := func(err error) result { return result{stderr: err.Error(), code: -1} }
	for _, p := range []string{errPath, stdoutPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
	}
	stdout, err := os.OpenFile(stdoutPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fail(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(errPath)
	if err != nil {
		return fail(err)
	}
	defer stderr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	outB, _ := os.ReadFile(stdoutPath)
	errB, _ := os.ReadFile(errPath)
	res := result{stdout: string(outB), stderr: string(errB)}
	var exit *exec.ExitError
	switch {
	case runErr == nil:
	case ctx.Err() != nil:
		res.code = -1
		res.stderr += fmt.Sprintf("\n(timed out after %v)", env.Timeouts.Ctr)
	case errors.As(runErr, &exit):
		res.code = exit.ExitCode()
	default:
		res.code = -1
		res.stderr += "\n" + runErr.Error()
	}
	return res
}

// env is runc-rt's environment, as an engine gives it.
func (r *runcRT) env() []string {
	return append(os.Environ(), "RTSHIM_RUNC="+env.Runc, "RTSHIM_CONFIG="+r.config)
}

// runcrt runs `runc-rt --root <root> args...`.
func (r *runcRT) runcrt(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return r.exec(r.env(), filepath.Join(env.BinDir, "runc-rt"), stdin, "", append([]string{"--root", r.root}, args...)...)
}

// runc runs the real runc with root.
func (r *runcRT) runc(t testing.TB, root string, args ...string) result {
	t.Helper()
	return r.exec(os.Environ(), env.Runc, "", "", append([]string{"--root", root}, args...)...)
}

// create runs `runc-rt create` of container id from bundle b, the container's output going to
// r.log(id), and registers the container's removal.
func (r *runcRT) create(t *testing.T, id, b string) result {
	t.Helper()
	t.Cleanup(func() { r.removeQuietly(t, id) })
	return r.exec(r.env(), filepath.Join(env.BinDir, "runc-rt"), "", r.log(id), "--root", r.root, "create", "--bundle", b, id)
}

// createStart creates and starts container id and waits until its output says want.
func (r *runcRT) createStart(t *testing.T, id, b, want string) {
	t.Helper()
	if res := r.create(t, id, b); res.code != 0 {
		t.Fatalf("runc-rt create %s: %v", id, res)
	}
	if res := r.runcrt(t, "", "start", id); res.code != 0 {
		t.Fatalf("runc-rt start %s: %v", id, res)
	}
	harness.WaitForFile(t, r.log(id), want, env.Timeouts.Output)
}

// removeQuietly makes sure container id is gone: its threads demoted (a throttled one would not
// die of SIGKILL), runc-rt delete --force, then the real runc's.
func (r *runcRT) removeQuietly(t testing.TB, id string) {
	if r.runc(t, r.root, "state", id).code != 0 {
		return
	}
	demoteCgroup(r.cgroup(id))
	if res := r.runcrt(t, "", "delete", "--force", id); res.code != 0 {
		t.Logf("cleanup: runc-rt delete --force %s: %v", id, res)
		r.runc(t, r.root, "delete", "--force", id)
	}
}

// assertBack fails when the cpu tree differs from before or runc-rt holds a claim or record of
// r's containers.
func (r *runcRT) assertBack(t testing.TB, before map[string]string) {
	t.Helper()
	assertCPUTreeBack(t, before, r.ns)
	for _, c := range claimRecords(t) {
		if c.Namespace == r.claimNS() {
			t.Errorf("claim left: %s (%s)", c.File, c.ID)
		}
	}
	if recs := wrapperRecords(r.ns); len(recs) > 0 {
		t.Errorf("runc-rt records left: %v", recs)
	}
}

// TestHardeningRuncRtSmallBudgetKill (issue 10, point 2, through runc-rt): a throttled FIFO busy
// loop with a 20 µs budget (limits.min_rt_runtime_us = 1) dies promptly of `runc-rt kill ID
// KILL` and of `runc-rt delete --force`, also while its throttled init is still starting, and
// its budget comes back; without limits.min_rt_runtime_us such a budget is refused.
func TestHardeningRuncRtSmallBudgetKill(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	r := newRuncRT(t, tinyGrantConfig)
	contrib, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	defaults := r.writeConfig(t, "defaults.toml", string(contrib))
	tiny := r.writeConfig(t, "tiny.toml", tinyBudgetConfig)
	before := harness.SnapshotCPUTree(t)
	withConfig := func(p string, f func()) {
		old := r.config
		r.config = p
		defer func() { r.config = old }()
		f()
	}

	t.Run("below a tick refused", func(t *testing.T) {
		var res result
		withConfig(defaults, func() { res = r.create(t, "tick", r.bundle(t, "tick", spinArgs, withAnnotations(spinner))) })
		if res.code == 0 {
			t.Fatalf("runc-rt granted a 20 µs budget under the defaults (one tick is %d µs)", tickUS(t))
		}
		for _, w := range []string{"runc-rt: invalid argument", `rtshim.io/rt-runtime-us="20"`, fmt.Sprintf("%d microseconds", tickUS(t)), "one scheduler tick"} {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("refusal does not say %q: %v", w, res)
			}
		}
		t.Logf("refused as expected: %s", strings.TrimSpace(res.stderr))
	})
	for _, how := range []string{"kill", "delete --force"} {
		t.Run(how, func(t *testing.T) {
			id := "spin-" + strings.ReplaceAll(strings.ReplaceAll(how, " ", ""), "-", "")
			r.createStart(t, id, r.bundle(t, id, grantSpinArgs, withAnnotations(grantSpinner)), "spinning")
			if b, _ := os.ReadFile(r.log(id)); !strings.Contains(string(b), "try=fifo:50 ok") {
				t.Fatalf("the program did not switch itself to FIFO:\n%s", b)
			}
			if got := harness.ReadInt(t, r.cpuFile(id, "cpu.rt_runtime_us")); got != 20 {
				t.Fatalf("cpu.rt_runtime_us %d, want 20", got)
			}
			r.killSpinner(t, id, how)
		})
	}
	// A few rounds: a kill that waits for `runc state` before it demotes was seen to take 4 to 18
	// s, in about one round of six.
	for i, how := range []string{"kill", "kill", "kill", "delete --force", "delete --force"} {
		t.Run(how+" while starting", func(t *testing.T) {
			id := fmt.Sprintf("starting-%d", i)
			withConfig(tiny, func() {
				if res := r.create(t, id, r.bundle(t, id, spinArgs, withAnnotations(spinner))); res.code != 0 {
					t.Fatalf("runc-rt create: %v", res)
				}
			})
			started := make(chan result, 1)
			environ := r.env()
			go func() {
				started <- r.exec(environ, filepath.Join(env.BinDir, "runc-rt"), "", "", "--root", r.root, "start", id)
			}()
			time.Sleep(time.Second)
			select {
			case res := <-started:
				t.Logf("runc-rt start did not wait for the throttled init (%v): killing a running container instead", res)
				started <- res
			default:
			}
			r.killSpinner(t, id, how)
			select {
			case res := <-started:
				t.Logf("runc-rt start returned: %v", res)
			case <-time.After(killBound):
				t.Errorf("runc-rt start had not returned %v after the kill", killBound)
			}
		})
	}
	r.assertBack(t, before)
}

// killSpinner ends running spinner container id with `runc-rt kill ID KILL` and then `runc-rt
// delete` (how "kill"), or with `runc-rt delete --force`, and checks that it died within
// killBound and is gone.
func (r *runcRT) killSpinner(t *testing.T, id, how string) {
	t.Helper()
	pid := onlyProcess(t, r.cgroup(id))
	assertThrottled(t, pid)
	args := []string{"kill", id, "KILL"}
	if how != "kill" {
		args = []string{"delete", "--force", id}
	}
	took, died := killTimed(t, pid, r.cgroup(id), func() error {
		if res := r.runcrt(t, "", args...); res.code != 0 {
			return fmt.Errorf("runc-rt %s: %v", strings.Join(args, " "), res)
		}
		return nil
	})
	switch {
	case !died:
		t.Errorf("runc-rt %s: still alive after %v (then demoted by the test)", strings.Join(args, " "), took.Round(time.Millisecond))
	case took > killBound:
		t.Errorf("runc-rt %s took %v, want under %v", strings.Join(args, " "), took.Round(time.Millisecond), killBound)
	default:
		t.Logf("runc-rt %s (throttled FIFO, 20 µs budget): dead after %v", strings.Join(args, " "), took.Round(time.Millisecond))
	}
	if how == "kill" {
		if res := r.runcrt(t, "", "delete", id); res.code != 0 {
			t.Errorf("runc-rt delete after kill: %v", res)
		}
	}
	if res := r.runc(t, r.root, "state", id); res.code == 0 {
		t.Errorf("runc still has %s after runc-rt %s", id, how)
	}
	if c := claimOfContainer(t, r.claimNS(), id); c != nil {
		t.Errorf("claim of %s left after runc-rt %s: %s", id, how, c.File)
	}
}

// TestHardeningRuncRtBrokenConfig (issue 10, point 5): with RTSHIM_CONFIG naming a malformed
// file (an operator's typo, after the container was created), runc-rt still runs the commands
// that need no config: state, list, kill and delete --force; the delete gives the container's
// budget and claim back. A create is refused, naming the file.
func TestHardeningRuncRtBrokenConfig(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	r := newRuncRT(t, emptyConfig)
	before := harness.SnapshotCPUTree(t)
	const id = "rt"
	r.createStart(t, id, r.bundle(t, id, []string{"/bin/schedinfo", "-sleep", "300"}, withAnnotations(fifo80)), "policy=SCHED_FIFO")
	if got := harness.ReadInt(t, r.cpuFile(id, "cpu.rt_runtime_us")); got != 100000 {
		t.Errorf("budget %d, want 100000", got)
	}
	if claimOfContainer(t, r.claimNS(), id) == nil {
		t.Fatal("no claim of the container")
	}
	pid := onlyProcess(t, r.cgroup(id))

	r.config = r.writeConfig(t, "broken.toml", "[limits\nmax_priority = 10\n")
	if res := r.create(t, "new", r.bundle(t, "new", []string{"/bin/true"}, withAnnotations(fifo80))); res.code == 0 || !strings.Contains(res.stderr, r.config) {
		t.Errorf("create with a malformed config: %v; want a refusal naming %s", res, r.config)
	}
	res := r.runcrt(t, "", "state", id)
	var st struct{ Status string }
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &st) != nil || st.Status != "running" {
		t.Errorf("runc-rt state: %v; want status running", res)
	}
	if res := r.runcrt(t, "", "list"); res.code != 0 || !strings.Contains(res.stdout, id+" ") {
		t.Errorf("runc-rt list: %v; want %s listed", res, id)
	}
	took, died := killTimed(t, pid, r.cgroup(id), func() error {
		if res := r.runcrt(t, "", "kill", id, "KILL"); res.code != 0 {
			return fmt.Errorf("runc-rt kill: %v", res)
		}
		return nil
	})
	if !died || took > killBound {
		t.Errorf("runc-rt kill: the container's process died %v after %v", died, took)
	}
	if res := r.runcrt(t, "", "delete", "--force", id); res.code != 0 {
		t.Errorf("runc-rt delete --force: %v", res)
	}
	if res := r.runc(t, r.root, "state", id); res.code == 0 {
		t.Error("runc still has the container after runc-rt delete --force")
	}
	r.assertBack(t, before)
}

// TestHardeningRuncRtUpdate (issue 10, point 6): `runc-rt update` keeps an RT container's quota
// exemption and budget as the shim's Update does: --cpu-quota, the --resources - JSON form
// (what containerd's runc shim sends, so `docker update --cpus` through runc-rt: also tested
// through containerd) and --cpu-rt-runtime leave the quota lifted and the budget unchanged.
// A container that is not real-time is updated as by runc.
func TestHardeningRuncRtUpdate(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	r := newRuncRT(t, emptyConfig)
	before := harness.SnapshotCPUTree(t)
	withQuota := func(s *specs.Spec) {
		q, p := int64(50000), uint64(100000)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &q, Period: &p}
	}
	sleep := []string{"/bin/schedinfo", "-sleep", "300"}
	r.createStart(t, "rt", r.bundle(t, "rt", sleep, withAnnotations(fifo80), withQuota), "policy=SCHED_FIFO")
	r.createStart(t, "plain", r.bundle(t, "plain", sleep, withQuota), "policy=SCHED_OTHER")
	check := func(step string, id string, quota, budget int64) {
		t.Helper()
		if got := harness.ReadInt(t, r.cpuFile(id, "cpu.cfs_quota_us")); got != quota {
			t.Errorf("%s: %s: cpu.cfs_quota_us %d, want %d", step, id, got, quota)
		}
		if got := harness.ReadInt(t, r.cpuFile(id, "cpu.cfs_period_us")); got != 100000 {
			t.Errorf("%s: %s: cpu.cfs_period_us %d, want 100000", step, id, got)
		}
		if got := harness.ReadInt(t, r.cpuFile(id, "cpu.rt_runtime_us")); got != budget {
			t.Errorf("%s: %s: cpu.rt_runtime_us %d, want %d", step, id, got, budget)
		}
	}
	check("created", "rt", -1, 100000)
	check("created", "plain", 50000, 0)
	for _, u := range []struct {
		name, stdin string
		args        []string
		plainQuota  int64
	}{
		{"--cpu-quota", "", []string{"--cpu-quota", "20000"}, 20000},
		{"--resources -", `{"cpu":{"quota":30000,"period":100000}}`, []string{"--resources", "-"}, 30000},
		{"--cpu-rt-runtime", "", []string{"--cpu-rt-runtime", "5000"}, 30000},
	} {
		for _, id := range []string{"rt", "plain"} {
			if id == "plain" && u.name == "--cpu-rt-runtime" {
				continue // runc's business, and a non-RT container's parent has no budget to give
			}
			if res := r.runcrt(t, u.stdin, append(append([]string{"update"}, u.args...), id)...); res.code != 0 {
				t.Errorf("runc-rt update %s %s: %v", u.name, id, res)
			}
		}
		check(u.name, "rt", -1, 100000)
		check(u.name, "plain", u.plainQuota, 0)
	}
	r.removeQuietly(t, "rt")
	r.removeQuietly(t, "plain")
	r.assertBack(t, before)

	t.Run("docker update --cpus through containerd", func(t *testing.T) {
		var d rtDaemon
		releaseLeftoversOf(t, &d)
		config := writeFile(t, t.TempDir(), "rtshim.toml", emptyConfig)
		d = rtDaemon{env.StartContainerd(t, harness.Options{Env: []string{"RTSHIM_RUNC=" + env.Runc, "RTSHIM_CONFIG=" + config}})}
		before := harness.SnapshotCPUTree(t)
		d.startIn(t, ctrRunOpts{id: "rt", runtime: harness.StockRuntime, runcBinary: filepath.Join(env.BinDir, "runc-rt"), ann: fifo80,
			quota: 50000, args: sleep}, "policy=SCHED_FIFO")
		if err := d.UpdateCPU(t, "rt", 20000, 100000); err != nil {
			t.Fatalf("task update: %v", err)
		}
		if got := harness.ReadInt(t, d.CPUFile("rt", "cpu.cfs_quota_us")); got != -1 {
			t.Errorf("cpu.cfs_quota_us %d after the update, want -1", got)
		}
		if got := harness.ReadInt(t, d.CPUFile("rt", "cpu.rt_runtime_us")); got != 100000 {
			t.Errorf("cpu.rt_runtime_us %d after the update, want 100000", got)
		}
		d.removeIn(t, "", "rt")
		d.AssertRestored(t, before)
	})
}

// TestHardeningRuncRtDeleteRunning (issue 10, point 10): `runc-rt delete` without --force of a
// running container fails as runc's does (same status and message) and keeps runc-rt's record
// and the budget: a later `exec --process` still gets the container's exec policy.
func TestHardeningRuncRtDeleteRunning(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	r := newRuncRT(t, emptyConfig)
	before := harness.SnapshotCPUTree(t)
	const id = "rt"
	ann := fifoWith("rtshim.io/exec-policy", "SCHED_RR")
	r.createStart(t, id, r.bundle(t, id, []string{"/bin/schedinfo", "-sleep", "300"}, withAnnotations(ann)), "policy=SCHED_FIFO")
	records := wrapperRecords(r.ns)
	if len(records) != 1 {
		t.Fatalf("runc-rt records %v, want the container's", records)
	}

	want := r.runc(t, r.root, "delete", id) // the real runc's refusal: nothing changes
	got := r.runcrt(t, "", "delete", id)
	if want.code == 0 || got.code != want.code || withoutLogTime(got.stderr) != withoutLogTime(want.stderr) {
		t.Errorf("runc-rt delete of a running container: %v\nwant runc's: %v", got, want)
	}
	t.Logf("runc-rt delete of the running container: exit %d, %s", got.code, strings.TrimSpace(got.stderr))
	if recs := wrapperRecords(r.ns); len(recs) != 1 {
		t.Errorf("runc-rt records %v after the refused delete, want %v", recs, records)
	}
	if claimOfContainer(t, r.claimNS(), id) == nil {
		t.Error("the claim is gone after the refused delete")
	}
	if got := harness.ReadInt(t, r.cpuFile(id, "cpu.rt_runtime_us")); got != 100000 {
		t.Errorf("budget %d after the refused delete, want 100000", got)
	}
	process := writeFile(t, r.dir, "process.json",
		`{"args": ["/bin/schedinfo"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}`)
	res := r.runcrt(t, "", "exec", "--process", process, id)
	if s := harness.ParseSched(t, res.stdout+"\n"); res.code != 0 || s["policy"] != "SCHED_RR" || s["priority"] != "50" {
		t.Errorf("exec --process after the refused delete: %v; want SCHED_RR 50", res)
	}
	if res := r.runcrt(t, "", "delete", "--force", id); res.code != 0 {
		t.Errorf("runc-rt delete --force: %v", res)
	}
	r.assertBack(t, before)
}

// logTime is the timestamp of runc's log lines on stderr (time="...").
var logTime = regexp.MustCompile(`time="[^"]*" `)

func withoutLogTime(s string) string { return logTime.ReplaceAllString(s, "") }

// TestHardeningRuncRtDropIn (issue 10, point 12): runc-rt behaves as runc where rtshim has no
// part. `runc-rt run` of a spec whose process.scheduler is not real-time (SCHED_BATCH nice 19,
// SCHED_IDLE) runs it with that policy; a spec whose scheduler runc itself rejects gets runc's
// own error (status and message); `runc-rt create -h` is runc's help under the name runc-rt.
func TestHardeningRuncRtDropIn(t *testing.T) {
	env.RequireRoot(t)
	r := newRuncRT(t, emptyConfig)
	before := harness.SnapshotCPUTree(t)
	withScheduler := func(s specs.Scheduler) func(*specs.Spec) {
		return func(spec *specs.Spec) { spec.Process.Scheduler = &s }
	}
	for _, tc := range []struct {
		id    string
		sched specs.Scheduler
		want  map[string]string
	}{
		{"batch", specs.Scheduler{Policy: "SCHED_BATCH", Nice: 19}, map[string]string{"policy": "SCHED_BATCH", "nice": "19"}},
		{"idle", specs.Scheduler{Policy: "SCHED_IDLE"}, map[string]string{"policy": "SCHED_IDLE"}},
	} {
		t.Run("run "+string(tc.sched.Policy), func(t *testing.T) {
			b := r.bundle(t, tc.id, []string{"/bin/schedinfo"}, withScheduler(tc.sched))
			t.Cleanup(func() { r.removeQuietly(t, tc.id) })
			res := r.runcrt(t, "", "run", "--bundle", b, tc.id)
			if res.code != 0 {
				t.Fatalf("runc-rt run: %v", res)
			}
			s := harness.ParseSched(t, res.stdout)
			for k, v := range tc.want {
				if s[k] != v {
					t.Errorf("%s %s, want %s", k, s[k], v)
				}
			}
		})
	}
	for _, tc := range []struct {
		id    string
		sched specs.Scheduler
	}{
		{"prio0", specs.Scheduler{Policy: "SCHED_FIFO", Priority: 0}},
		{"badflag", specs.Scheduler{Policy: "SCHED_OTHER", Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_BOGUS"}}},
	} {
		t.Run(fmt.Sprintf("%s %+v", tc.id, tc.sched), func(t *testing.T) {
			b := r.bundle(t, tc.id, []string{"/bin/true"}, withScheduler(tc.sched))
			want := r.runc(t, filepath.Join(r.dir, "runc-control"), "create", "--bundle", b, tc.id)
			r.runc(t, filepath.Join(r.dir, "runc-control"), "delete", "--force", tc.id)
			got := r.create(t, tc.id, b)
			if want.code == 0 {
				t.Fatalf("runc accepted the spec: %v", want)
			}
			if got.code != want.code || withoutLogTime(got.stderr) != withoutLogTime(want.stderr) {
				t.Errorf("runc-rt create: %v\nwant runc's: %v", got, want)
			}
			t.Logf("runc's verdict: %s", strings.TrimSpace(got.stderr))
		})
	}
	t.Run("create -h", func(t *testing.T) {
		want := r.runc(t, r.root, "create", "-h")
		got := r.runcrt(t, "", "create", "-h")
		wantOut := regexp.MustCompile(`(?m)^(\s*)runc\b`).ReplaceAllString(want.stdout, "${1}runc-rt")
		if got.code != want.code || got.stdout != wantOut || !strings.Contains(got.stdout, "runc-rt create") {
			t.Errorf("runc-rt create -h: %v\nwant runc's help under the name runc-rt:\n%s", got, wantOut)
		}
	})
	r.assertBack(t, before)
}
