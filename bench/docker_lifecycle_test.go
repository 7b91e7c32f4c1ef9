//go:build linux

package bench

// BenchmarkDocker's lifecycles: docker create, start, stop and rm of one container, timed step
// by step, and what a container leaves on the host once removed.

import (
	"bytes"
	"errors"

	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/internal/harness"
)

// dockerSteps are the timed steps of a lifecycle.
var dockerSteps = []string{"create", "start", "stop", "rm"}

// program is what k's lifecycle container runs: sleep, started SCHED_FIFO 80 by rtshim (apply
// mode) or switched by chrt (Docker's route).
func (k dockerKind) program() []string {
	if k.self {
		return []string{"/bin/chrt", "-f", strconv.Itoa(rtPriority), "/bin/sleep", "600"}
	}
	return []string{"/bin/sleep", "600"}
}

// runArgs are the docker create/run flags of k, before the image.
func (k dockerKind) runArgs() []string {
	args := []string{"--network", "none", "--stop-timeout", "1"}
	if k.runtime != "" {
		args = append(args, "--runtime", k.runtime)
	}
	return append(args, k.flags...)
}

// lifecycle runs container name of kind k through docker create, start, stop -t 0 and rm,
// timing each step (dockerSteps). Between start and stop, untimed, it waits until the
// program runs with k's policy and calls running with its init's pid. A failed step
// removes the container and returns the error.
func (r *dockerRig) lifecycle(b *testing.B, k dockerKind, name string, running func(pid int)) ([]time.Duration, error) {
	b.Helper()
	var steps []time.Duration
	step := func(args ...string) error {
		begin := time.Now()
		_, _, err := r.k.Docker(b, args...)
		steps = append(steps, time.Since(begin))
		return err
	}
	fail := func(err error) ([]time.Duration, error) {
		_, _, _ = r.k.Docker(b, "rm", "-f", name)
		return nil, err
	}
	create := append(append([]string{"create", "--name", name}, k.runArgs()...), dockerImage)
	if err := step(append(create, k.program()...)...); err != nil {
		return fail(err)
	}
	if err := step("start", name); err != nil {
		return fail(err)
	}
	pid, err := r.pid(b, name)
	if err == nil {
		err = waitPolicy(pid, k.rt)
	}
	if err != nil {
		return fail(fmt.Errorf("%s (%s): %w", name, k.name, err))
	}
	if running != nil {
		running(pid)
	}
	if err := step("stop", "-t", "0", name); err != nil {
		return fail(err)
	}
	if err := step("rm", name); err != nil {
		return fail(err)
	}
	return steps, nil
}

// pid is container name's init pid.
func (r *dockerRig) pid(b *testing.B, name string) (int, error) {
	out, _, err := r.k.Docker(b, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("docker inspect %s: pid %q", name, out)
	}
	return pid, nil
}

// waitPolicy waits up to 2 s for pid to run SCHED_FIFO 80 (rt) or SCHED_OTHER: chrt switches
// only after the container started.
func waitPolicy(pid int, rt bool) error {
	want := [2]int{0, 0}
	if rt {
		want = [2]int{1, rtPriority}
	}
	var got [2]int
	for deadline := time.Now().Add(2 * time.Second); ; {
		var err error
		if got[0], got[1], err = procSched(pid); err != nil {
			return err
		}
		if got == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != want {
		return fmt.Errorf("pid %d runs policy %d priority %d, want %d %d", pid, got[0], got[1], want[0], want[1])
	}
	return nil
}

// procSched is pid's policy (0 SCHED_OTHER, 1 SCHED_FIFO) and RT priority, fields 41 and 40 of
// /proc/<pid>/stat.
func procSched(pid int) (policy, priority int, err error) {
	s, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The fields after the command name (in parentheses) start with field 3.
	f := strings.Fields(string(s[bytes.LastIndexByte(s, ')')+1:]))
	if len(f) < 39 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	if priority, err = strconv.Atoi(f[40-3]); err == nil {
		policy, err = strconv.Atoi(f[41-3])
	}
	return policy, priority, err
}

// residueRow is one container's effect on the host: while it ran and once docker rm returned.
type residueRow struct {
	kind       dockerKind
	daemonFlag bool   // dockerd ran with --cpu-rt-runtime
	outcome    string // "SCHED_FIFO 80", or why it did not run
	running    string // RT budgets of its cgroup and ancestors while it ran
	id         string // the container's ID (its cgroup's name), once it ran
	claims     int    // rtshim's records naming it while it ran
	left       []string
	rootBefore int64 // the root's RT budget left for other groups, µs
	rootAfter  int64
}

// residue runs one lifecycle of kind k and records what it changed.
func (r *dockerRig) residue(b *testing.B, k dockerKind, daemonFlag bool) residueRow {
	b.Helper()
	row := residueRow{kind: k, daemonFlag: daemonFlag, rootBefore: harness.RootRTAvailable(b)}
	before := harness.SnapshotCPUTree(b)
	name := fmt.Sprintf("residue-%s-%t", k.key, daemonFlag)
	_, err := r.lifecycle(b, k, name, func(pid int) {
		cg := harness.CPUCgroupOf(b, pid)
		var budgets []string
		for p := cg; p != "/"; p = filepath.Dir(p) {
			budgets = append(budgets, fmt.Sprintf("%s %d", r.short(p), harness.ReadInt(b, filepath.Join(harness.CPUV1(p), "cpu.rt_runtime_us"))))
		}
		row.running = strings.Join(budgets, ", ")
		row.id = filepath.Base(cg)
		row.claims = len(claimsNaming(b, row.id))
	})
	switch {
	case err == nil && k.rt:
		row.outcome = fmt.Sprintf("SCHED_FIFO %d", rtPriority)
	case err == nil:
		row.outcome = "SCHED_OTHER"
	case k.key == "docker" && !daemonFlag:
		// What Docker users see without the daemon flag: runc's write of the container's
		// budget is refused under a parent without any.
		msg := lineWith(err.Error(), "cpu.rt_runtime_us")
		if i := strings.Index(msg, "write "); i >= 0 {
			msg = msg[i:]
		}
		row.outcome = "refused: " + r.short(msg)
	default:
		b.Fatalf("%s: %v", k.name, err)
	}
	for _, l := range r.d.Residue(b, before) {
		row.left = append(row.left, r.short(l))
	}
	// runc-rt's claims are named after runc's --root, which dockerd chooses (under its exec
	// root): Residue does not know them, so look for the container's ID in every record.
	if row.id != "" {
		for _, c := range claimsNaming(b, row.id) {
			row.left = append(row.left, "record "+r.short(c))
		}
	}
	row.rootAfter = harness.RootRTAvailable(b)
	return row
}

// claimsNaming lists rtshim's claims and runc-rt's records whose name holds id.
func claimsNaming(b *testing.B, id string) []string {
	b.Helper()
	var out []string
	for _, dir := range []string{"claims", "wrapper"} {
		ents, err := os.ReadDir(filepath.Join(harness.StateDir, dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), id) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// short names a cgroup or cpu-tree path without the host's mount point and with <ns> for the
// daemon's namespace, so the report names nothing of the run.
func (r *dockerRig) short(s string) string {
	s = strings.ReplaceAll(s, harness.CPUV1("/")+",cpuacct", "")
	s = strings.ReplaceAll(s, harness.CPUV1("/"), "")
	s = containerID.ReplaceAllString(s, "<id>")
	return strings.ReplaceAll(s, r.d.Namespace, "<ns>")
}

// containerID is a Docker container ID, in the cgroup paths of an error.
var containerID = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// lifecycleRuns are the lifecycle times: by kind key, by step, in round order.
type lifecycleRuns struct {
	rounds int
	steps  map[string][][]float64 // ms
}

func (l lifecycleRuns) total(key string) []float64 {
	var out []float64
	for i := range l.steps[key][0] {
		sum := 0.0
		for s := range dockerSteps {
			sum += l.steps[key][s][i]
		}
		out = append(out, sum)
	}
	return out
}

// lifecycles runs rounds rounds of every kind (apply mode for rtshim) under dockerd with the
// daemon flag, the kinds in a balanced Latin square order, after one warm-up each.
func (r *dockerRig) lifecycles(b *testing.B, rounds int) lifecycleRuns {
	b.Helper()
	kinds := dockerKinds(false)
	run := func(k dockerKind, name string) []time.Duration {
		steps, err := r.lifecycle(b, k, name, nil)
		if err != nil {
			b.Fatal(err)
		}
		return steps
	}
	for _, k := range kinds {
		run(k, "warmup-"+k.key)
	}
	l := lifecycleRuns{rounds: rounds, steps: map[string][][]float64{}}
	for _, k := range kinds {
		l.steps[k.key] = make([][]float64, len(dockerSteps))
	}
	for i := range rounds {
		for _, off := range latinSquare {
			k := kinds[(i+off)%len(kinds)]
			for s, d := range run(k, fmt.Sprintf("life-%d-%s", i, k.key)) {
				l.steps[k.key][s] = append(l.steps[k.key][s], ms(d))
			}
		}
	}
	return l
}

// reportResidue adds the table of what each kind left.
func (r *dockerRig) reportResidue(b *testing.B, s *benchSection, rows []residueRow, afterStop []string, rootBefore, rootAfterStop int64) {
	b.Helper()
	t := newTable("dockerd", "route", "ran", "RT budgets while it ran (µs)", "rtshim records", "left after docker rm", "root's free RT µs before → after")
	for _, row := range rows {
		flag := "no RT flag"
		if row.daemonFlag {
			flag = "--cpu-rt-runtime=" + strconv.Itoa(dockerDaemonRT)
		}
		left := "nothing"
		if len(row.left) > 0 {
			left = strings.Join(row.left, "; ")
		}
		running := row.running
		if running == "" {
			running = "-"
		}
		t.add(flag, row.kind.short, row.outcome, running, strconv.Itoa(row.claims), left,
			fmt.Sprintf("%d → %d", row.rootBefore, row.rootAfter))
		b.ReportMetric(float64(row.rootBefore-row.rootAfter), "us-rt-left-"+row.kind.key+map[bool]string{true: "-flag", false: ""}[row.daemonFlag])
	}
	stopped := "nothing"
	if len(afterStop) > 0 {
		var short []string
		for _, l := range afterStop {
			short = append(short, r.short(l))
		}
		stopped = strings.Join(short, "; ")
	}
	t.add("stopped (SIGTERM)", "after all runs", "-", "-", "-", stopped, fmt.Sprintf("%d → %d", rootBefore, rootAfterStop))
	s.para("**What each leaves on the host.** One lifecycle of each (`docker create`, `start`, `stop -t 0`, `rm`; the "+
		"program is `sleep`, started SCHED_FIFO 80 by rtshim's apply mode or switched by `chrt -f 80` on Docker's route), "+
		"first under dockerd without `--cpu-rt-runtime`, then under the same dockerd restarted with it. *Left after docker rm* "+
		"is the difference in the host's cpu cgroup tree (`cpu.rt_runtime_us`, `cpu.cfs_quota_us` of every cgroup; new cgroups "+
		"without budget or quota not counted) and rtshim's records naming the container (the shim's claims, runc-rt's "+
		"claims and records), from just before the container's create to just after its "+
		"rm; the last column is the RT runtime the root's other groups can still get (the host's %d µs less what its children "+
		"hold). The last row compares the end, dockerd stopped, with the start. dockerd's flag writes its budget into every "+
		"ancestor of a container's cgroup below the root (moby's `initCPURtController`) at every container create, whatever "+
		"the runtime and whether the container asks for RT, and nothing ever gives it back: it stays allocated for as long "+
		"as those cgroups exist, dockerd running or not (here until the benchmark's cleanup removes `<ns>`). With that "+
		"budget in place rtshim writes no ancestor, and its rows show nothing more.", rootAvailTotal(b))
	s.table(t)
	for _, row := range rows {
		if !row.kind.rtshimKind() {
			continue
		}
		flag := "without"
		if row.daemonFlag {
			flag = "with"
		}
		left := "nothing"
		if len(row.left) > 0 {
			left = strings.Join(row.left, "; ")
		}
		s.goal(fmt.Sprintf("docker rm, dockerd %s --cpu-rt-runtime: %s leaves", flag, row.kind.short), left, "nothing", len(row.left) == 0)
	}
	s.para("No goal is stated for Docker's route or the control: their rows are the figures next to rtshim's.")
}

// rootAvailTotal is the host's RT limit that the root cgroup holds.
func rootAvailTotal(b *testing.B) int64 {
	return harness.ReadInt(b, harness.CPUV1("cpu.rt_runtime_us"))
}

// reportLifecycle adds the lifecycle table, its goals and figure.
func (r *dockerRig) reportLifecycle(b *testing.B, s *benchSection, l lifecycleRuns) {
	b.Helper()
	kinds := dockerKinds(false)
	t := newTable(append(append([]string{"route"}, dockerSteps...), "total median ms", "total p95 ms", "median / control")...)
	control := median(l.total("control"))
	bars := plot.Bars{Title: "docker create + start + stop + rm", YLabel: "milliseconds"}
	for _, st := range dockerSteps {
		bars.Series = append(bars.Series, plot.BarSeries{Name: st + " (median)"})
	}
	for _, k := range kinds {
		row := []string{k.short}
		bars.Groups = append(bars.Groups, k.short)
		for i := range dockerSteps {
			m := median(l.steps[k.key][i])
			row = append(row, fmt.Sprintf("%.1f", m))
			bars.Series[i].Values = append(bars.Series[i].Values, m)
		}
		total := l.total(k.key)
		row = append(row, fmt.Sprintf("%.1f", median(total)), fmt.Sprintf("%.1f", percentile(total, 95)), ratio(median(total)/control))
		t.add(row...)
		b.ReportMetric(median(total), "ms-docker-lifecycle-"+k.key)
	}
	s.para("**Lifecycle** under dockerd with `--cpu-rt-runtime=%d`: %d rounds of the four, in a balanced Latin square order "+
		"after a warm-up each; wall time of each docker command (medians), their sum per lifecycle. Between start and stop, "+
		"untimed, the program's policy is checked (SCHED_FIFO 80, SCHED_OTHER for the control). The goal is the project's "+
		"lifecycle goal for RT containers (rtshim's median over the stock runc shim's ≤ %.2f, see *Lifecycle*), here with "+
		"Docker's own cost in both; Docker's route has none.", dockerDaemonRT, l.rounds, goalRT)
	s.table(t)
	// Where each route's time goes, over the control's: the explanation of a miss.
	var deltas []string
	missed := false
	for _, k := range kinds {
		if k.key == "control" {
			continue
		}
		var d []string
		for i, st := range dockerSteps {
			d = append(d, fmt.Sprintf("%s %+.1f", st, median(l.steps[k.key][i])-median(l.steps["control"][i])))
		}
		deltas = append(deltas, k.short+": "+strings.Join(d, ", "))
		if k.rtshimKind() {
			got := median(l.total(k.key)) / control
			s.goal("docker lifecycle, "+k.short+" / stock runc median", ratio(got), fmt.Sprintf("≤ %.2f", goalRT), got <= goalRT)
			missed = missed || got > goalRT
		}
	}
	s.para("Each step's median over the control's, ms: %s.", strings.Join(deltas, "; "))
	if missed {
		s.para("A MISS above is in the steps named there. The rt shim's own work is at create (the bundle record, the " +
			"grant under the host-wide lock, the policy set on the paused init) and at stop (every RT thread set to " +
			"SCHED_OTHER before SIGKILL; the budget given back at delete). runc-rt does the same work but as a process " +
			"of its own for every runc command containerd's runc shim runs (create, start, kill, delete, state), each " +
			"reading its config and then exec'ing runc: Docker's path form pays one more Go binary's start per command.")
	}
	s.plot(b, "lifecycle", "docker lifecycle time by route and step", bars.WriteSVG)
}
