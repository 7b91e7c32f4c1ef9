//go:build linux

package bench

// Latency benchmarks: wake-up latency with Debian's cyclictest under load (BenchmarkLatency;
// the loads are in latency_load_test.go, the report in latency_report_test.go) and the mixed
// application under a CFS quota (BenchmarkQuota), on the host, through the rt shim and through
// the stock runc shim. `make bench` runs them with RTSHIM_ROOTFS pointing at
// _output/rootfs-bench, the test rootfs plus cyclictest, stress-ng and hackbench and their
// libraries (make rootfs-bench). BenchmarkLatency measures in interleaved rounds
// (rounds_test.go: RTSHIM_BENCH_LATENCY_ROUNDS, RTSHIM_BENCH_LATENCY_SECONDS); BenchmarkQuota
// runs once:
//
//	RTSHIM_BENCH_SECONDS     seconds of BenchmarkQuota's measurement (default 10)
//
// See lifecycle_test.go for how the benchmarks run and report.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// Goals of every latency scenario (BenchmarkDocker's rtshim rows too, through hostGoal): the
// rt container's p99 and p99.9 (each the median of the rounds', pooledRun.typical) within
// max(goalHostFactor × the host's, the host's + goalHostSlackUS). With its own container
// busy, the rt container's p99 goalVsRunc times better than the stock runc container's. (Next to a
// busy neighbour the stock runc container's ratio is reported without a goal: there it
// measures the fair scheduler, which on this kernel (EEVDF) does not starve a mostly sleeping
// SCHED_OTHER task, not the runtime.)
const (
	goalHostFactor  = 1.1
	goalHostSlackUS = 10
	goalVsRunc      = 20
	// goalQuota: the mixed application's worst case with the quota exemption, over its worst
	// case without any quota.
	goalQuota = 2.0
)

// rtPriority is the priority of every RT measuring thread.
const rtPriority = 80

// Paths of the benchmark programs in the container; on the host, under env.Rootfs.
const (
	cyclictestPath = "/usr/bin/cyclictest"
	busyPath       = "/bin/busy"
	mixedAppPath   = "/bin/mixedapp"
	wakelatPath    = "/bin/wakelat"
)

// grantFIFO80 is the rt container of the cyclictest runs: grant mode gives the container
// CAP_SYS_NICE and a budget, and cyclictest -p 80 makes its measuring thread SCHED_FIFO 80,
// and nothing else. (Apply mode with rtshim.io/reset-on-fork=true cannot run cyclictest:
// cyclictest first checks that it may switch to SCHED_FIFO, which clears reset-on-fork and so
// needs CAP_SYS_NICE. BenchmarkLatency shows that once, as a probe.)
var grantFIFO80 = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": strconv.Itoa(rtPriority), "rtshim.io/mode": "grant"}

// applyFIFO80ResetOnFork is the rt container of the mixed application: its main thread (the
// RT loop) starts SCHED_FIFO 80, its other threads SCHED_OTHER.
var applyFIFO80ResetOnFork = map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": strconv.Itoa(rtPriority),
	"rtshim.io/reset-on-fork": "true"}

// benchSeconds is RTSHIM_BENCH_SECONDS.
func benchSeconds(b *testing.B) int { return envInt(b, "RTSHIM_BENCH_SECONDS", 10) }

// requireBenchRootfs fails unless RTSHIM_ROOTFS has the benchmark programs (make rootfs-bench).
func requireBenchRootfs(b *testing.B) {
	b.Helper()
	for _, p := range []string{cyclictestPath, busyPath, mixedAppPath, wakelatPath, stressNGPath, hackbenchPath} {
		if !harness.Exists(filepath.Join(env.Rootfs, p)) {
			b.Fatalf("RTSHIM_ROOTFS=%s has no %s: run the benchmarks with `make bench`, which builds _output/rootfs-bench (the test rootfs plus cyclictest, stress-ng and hackbench)", env.Rootfs, p)
		}
	}
}

// cyclictestArgs measures one thread at 1 kHz for secs seconds; prio 0 runs it SCHED_OTHER.
// --default-system: no /dev/cpu_dma_latency request (containers have no such device, and it
// would change the host's power management while it runs).
func cyclictestArgs(secs, prio int) []string {
	args := []string{cyclictestPath, "-i", "1000", "-D", strconv.Itoa(secs), "-q", "--default-system",
		"-h", strconv.Itoa(histMaxUS), "--histfile=/dev/null", "--json=/dev/stdout"}
	if prio > 0 {
		return append(args, "-p", strconv.Itoa(prio))
	}
	return append(args, "--policy=other")
}

// rtRefused is what cyclictest prints when it cannot get its RT priority.
const rtRefused = "Unable to change scheduling policy"

// runOnHost runs argv on the host under `chrt -R -f 80`, in the root cpu cgroup (which holds
// the host's RT budget: the physical limit the containers are compared with), and returns its
// combined output and exit status.
func runOnHost(b *testing.B, timeout time.Duration, argv ...string) (string, int, error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	chrt := append([]string{"chrt", "-R", "-f", strconv.Itoa(rtPriority)}, argv...)
	var cmd *exec.Cmd
	if procs := harness.CPUV1("cgroup.procs"); harness.Exists(procs) {
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `echo $$ >"$0" && exec "$@"`, procs}, chrt...)...)
	} else {
		cmd = exec.CommandContext(ctx, chrt[0], chrt[1:]...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return string(out), -1, fmt.Errorf("%v: timed out after %v", argv, timeout)
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitCode(), nil
	case err != nil:
		return string(out), -1, err
	}
	return string(out), 0, nil
}

// runToEnd runs a container detached and waits for it to exit: it sleeps until expect has
// passed since the container started, then polls. (Each poll is a ctr process and a call into
// containerd: none falls into a latency measurement that ends within expect.) started runs
// once the container runs, stopped once it has exited and before it is deleted (its cgroup is
// still there). The container is deleted; its output and exit status are returned.
func runToEnd(b *testing.B, d *harness.Daemon, o harness.RunOpts, expect time.Duration, started, stopped func()) (string, int, error) {
	b.Helper()
	o.Detach = true
	if out, _, err := d.Run(b, o); err != nil {
		return out, -1, err
	}
	begin := time.Now()
	if started != nil {
		started()
	}
	deadline := begin.Add(expect + 60*time.Second)
	wait := expect
	for {
		time.Sleep(wait)
		if taskStopped(b, d, o.ID) {
			break
		}
		if time.Now().After(deadline) {
			_ = d.RemoveErr(o.ID)
			return "", -1, fmt.Errorf("container %s still runs %v after its start", o.ID, time.Since(begin).Round(time.Second))
		}
		wait = 200 * time.Millisecond
	}
	if stopped != nil {
		stopped()
	}
	// ctr tasks delete warns "task <id> exit with non-zero exit code <n>" (containerd 2.x;
	// 1.x exited with the status instead).
	code := 0
	_, stderr, err := d.Ctr(b, "tasks", "delete", o.ID)
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		return "", -1, err
	}
	if _, n, ok := strings.Cut(stderr, "non-zero exit code "); ok {
		if code, err = strconv.Atoi(strings.TrimRight(strings.Fields(n)[0], `"`)); err != nil {
			return "", -1, fmt.Errorf("ctr tasks delete %s: %q: %w", o.ID, stderr, err)
		}
	}
	if _, _, err := d.Ctr(b, "containers", "delete", o.ID); err != nil {
		return "", code, err
	}
	out, err := settledOutput(d.OutputFile(o.ID))
	return out, code, err
}

// settledOutput reads a detached container's output file once the shim has finished writing
// it: the shim copies the container's output into it asynchronously, and may still be at it
// after the task is deleted. It waits (up to 5 s) for the file to be non-empty and unchanged
// for 200 ms.
func settledOutput(path string) (string, error) {
	var last []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		if len(b) > 0 && string(b) == string(last) || time.Now().After(deadline) {
			return string(b), nil
		}
		last = b
		time.Sleep(200 * time.Millisecond)
	}
}

// taskStopped reports whether container id's task has exited.
func taskStopped(b *testing.B, d *harness.Daemon, id string) bool {
	out, _, err := d.Ctr(b, "tasks", "ls")
	if err != nil {
		return false
	}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == id {
			return f[2] == "STOPPED"
		}
	}
	return false
}

// latencyRun is one wake-up latency measurement.
type latencyRun struct {
	lat    latencies
	policy string // of the measuring thread: "SCHED_FIFO 80"
	tool   string // cyclictest or wakelat
	note   string // why, when it is not what was asked for
}

// latencyBench is what every run of BenchmarkLatency shares.
type latencyBench struct {
	b      *testing.B
	d      *harness.Daemon
	rounds int
	secs   int // of one measurement, a round's
	expect time.Duration
	// runcRefused: why cyclictest cannot run in the stock runc container ("": it can).
	runcRefused string
}

// measureDelay is how long a container's measurer waits before it measures: its window then
// holds the running container, not the end of its start (containerd, the shim and the
// runtime finishing it, the client returning), which the lifecycle benchmarks time. On the
// host nothing of the harness runs once chrt has exec'd the measurer, which starts at once.
const measureDelay = 500 * time.Millisecond

// measureTail is how long after its window a measurer is given to print and exit before the
// first look for its end (runToEnd).
const measureTail = 200 * time.Millisecond

// measuredTree is the measured process tree around measure, with paths under root ("" in a
// container, env.Rootfs on the host): with own, `busy -n <loops> -t <secs + 120> -- <measure>`,
// busy loops in its cgroup. In a container the measurer starts measureDelay after the tree.
func measuredTree(own bool, root string, secs int, measure []string) []string {
	measure[0] = root + measure[0]
	if root == "" {
		measure = append([]string{"/bin/sh", "-c", `sleep "$0" && exec "$@"`, strconv.FormatFloat(measureDelay.Seconds(), 'f', -1, 64)}, measure...)
	}
	if !own {
		return measure
	}
	return append([]string{root + busyPath, "-n", strconv.Itoa(busyLoops()), "-t", strconv.Itoa(secs + 120), "--"}, measure...)
}

// tree is sc's measured process tree (measuredTree).
func (lb *latencyBench) tree(sc latencyScenario, root string, measure []string) []string {
	return measuredTree(sc.own, root, lb.secs, measure)
}

func (lb *latencyBench) cyclictest(prio int) []string {
	return cyclictestArgs(lb.secs, prio)
}

func (lb *latencyBench) wakelat(prio int) []string {
	return []string{wakelatPath, "-i", "1000", "-D", strconv.Itoa(lb.secs), "-p", strconv.Itoa(prio)}
}

// result turns a measurer's output into run's latencies.
func result(run latencyRun, out string, code int, err error) (latencyRun, error) {
	switch {
	case err != nil:
		return run, fmt.Errorf("%w; output:\n%s", err, out)
	case code != 0:
		return run, fmt.Errorf("exit %d; output:\n%s", code, out)
	}
	run.lat, err = parseCyclictest(out)
	return run, err
}

// latencyMode is one way to run the measured process tree: a row of each scenario. A peer
// (another route to an RT container) is one more entry of latencyModes.
type latencyMode struct {
	key, name string
	short     string // for the figures' legends; "" keeps it out of the figures (the calibration run)
	// calibration: only in the scenarios that calibrate (latencyScenario.calibrate).
	calibration bool
	// run measures once, in round (which names its containers: a fresh id each time).
	run func(lb *latencyBench, sc latencyScenario, round int) (latencyRun, error)
}

var fifo80Run = latencyRun{policy: fmt.Sprintf("SCHED_FIFO %d", rtPriority), tool: "cyclictest"}

var latencyModes = []latencyMode{
	{key: "host", name: "host, chrt -R -f 80", short: "host",
		run: func(lb *latencyBench, sc latencyScenario, _ int) (latencyRun, error) {
			out, code, err := runOnHost(lb.b, lb.expect+60*time.Second, lb.tree(sc, env.Rootfs, lb.cyclictest(rtPriority))...)
			return result(fifo80Run, out, code, err)
		}},
	{key: "rt", name: "rt shim", short: "rt shim",
		run: func(lb *latencyBench, sc latencyScenario, round int) (latencyRun, error) {
			out, code, err := runToEnd(lb.b, lb.d, harness.RunOpts{ID: fmt.Sprintf("%s-rt-%d", sc.key, round), Annotations: grantFIFO80,
				Args: lb.tree(sc, "", lb.cyclictest(rtPriority))}, lb.expect, nil, nil)
			return result(fifo80Run, out, code, err)
		}},
	{key: "runc", name: "runc shim", short: "runc shim", run: runcLatency},
	{key: "host-wakelat", name: "host, chrt -R -f 80", calibration: true,
		run: func(lb *latencyBench, sc latencyScenario, _ int) (latencyRun, error) {
			out, code, err := runOnHost(lb.b, lb.expect+60*time.Second, lb.tree(sc, env.Rootfs, lb.wakelat(rtPriority))...)
			run := fifo80Run
			run.tool = "wakelat"
			return result(run, out, code, err)
		}},
}

// runcLatency runs the measured tree in a container of the stock runc shim with the rt
// container's annotations: cyclictest -p 80 where it can run there, else (lb.runcRefused:
// on a cgroup v1 host with RT group scheduling the container's cgroup has no budget) wakelat
// at SCHED_OTHER.
func runcLatency(lb *latencyBench, sc latencyScenario, round int) (latencyRun, error) {
	run, measure := fifo80Run, lb.cyclictest(rtPriority)
	if lb.runcRefused != "" {
		run.policy, run.tool, run.note = "SCHED_OTHER", "wakelat", lb.runcRefused
		measure = lb.wakelat(0)
	}
	out, code, err := runToEnd(lb.b, lb.d, harness.RunOpts{ID: fmt.Sprintf("%s-runc-%d", sc.key, round), Runtime: harness.StockRuntime, Annotations: grantFIFO80,
		Args: lb.tree(sc, "", measure)}, lb.expect, nil, nil)
	return result(run, out, code, err)
}

// runcRefusal runs cyclictest -p 80 for a second in a stock runc container with the rt
// container's annotations, once and idle (under load, the runc shim was seen to lose the
// output of a process that exits at once): "" if it ran, else why not, for the report.
func runcRefusal(b *testing.B, d *harness.Daemon) string {
	b.Helper()
	// cyclictest exits at once when refused, and a process that exits at once can lose its
	// output in containerd's copy ("error copying stderr", seen under load; see TestTTY): an
	// empty output is asked again, a few times, never taken for an answer.
	for try := 1; ; try++ {
		out, code, err := runToEnd(b, d, harness.RunOpts{ID: fmt.Sprintf("probe-runc-fifo-%d", try), Runtime: harness.StockRuntime,
			Annotations: grantFIFO80, Args: cyclictestArgs(1, rtPriority)}, time.Second, nil, nil)
		switch {
		case err != nil:
			b.Fatalf("probe, cyclictest -p %d in a runc container: %v", rtPriority, err)
		case code == 0:
			return ""
		case strings.Contains(out, rtRefused):
			return fmt.Sprintf("cyclictest -p %d: %q", rtPriority, lineWith(out, rtRefused))
		case strings.TrimSpace(out) == "" && try < 3:
			b.Logf("probe, cyclictest -p %d in a runc container: exit %d with no output (try %d); again", rtPriority, code, try)
			continue
		}
		b.Fatalf("probe, cyclictest -p %d in a runc container: exit %d; output:\n%s", rtPriority, code, out)
	}
}

// modesOf are the modes that run in sc.
func modesOf(sc latencyScenario) []latencyMode {
	var ms []latencyMode
	for _, m := range latencyModes {
		if !m.calibration || sc.calibrate {
			ms = append(ms, m)
		}
	}
	return ms
}

// legend names run r of mode m in a figure: "runc shim: OTHER, wakelat".
func (m latencyMode) legend(r latencyRun) string {
	return fmt.Sprintf("%s: %s, %s", m.short, strings.TrimPrefix(r.policy, "SCHED_"), r.tool)
}

// probe runs a container that is expected to fail and describes how it ended.
func probe(b *testing.B, d *harness.Daemon, o harness.RunOpts) string {
	b.Helper()
	out, code, err := runToEnd(b, d, o, time.Second, nil, nil)
	switch {
	case err != nil:
		b.Fatal(err)
	case code == 0:
		return "ran"
	}
	return fmt.Sprintf("exit %d, %q", code, lineWith(out, rtRefused))
}

// BenchmarkLatency measures the wake-up latency of one thread at 1 kHz with cyclictest under
// the loads of latencyScenarios (idle; the container's own process tree busy; busy loops,
// stress-ng's memory, cache, I/O and context-switch stressors and hackbench next to it), run
// each way of latencyModes: the same process tree on the host under chrt -R -f 80, a
// container of the rt shim, and one of the stock runc shim. There cyclictest cannot start at
// all (it insists on switching to SCHED_FIFO first, even with --policy=other), so
// /bin/wakelat, cyclictest's measuring loop, measures at SCHED_OTHER instead; wakelat also
// runs on the host in the first scenarios, to show it agrees with cyclictest. Every row of a
// scenario measures in interleaved rounds (rounds_test.go) next to one neighbour's load, in a
// container of the stock runc shim that runs through all of them.
func BenchmarkLatency(b *testing.B) {
	env.RequireRoot(b)
	requireBenchRootfs(b)
	rounds, secs := latencyRounds(b), latencySeconds(b)
	d := startContainerd(b)
	keepLog(b, d)
	lb := &latencyBench{b: b, d: d, rounds: rounds, secs: secs, expect: time.Duration(secs)*time.Second + measureDelay + measureTail}
	loadBefore := loadAvg()
	begin := time.Now()

	// Probes: what does not work, and how it fails.
	probeApply := probe(b, d, harness.RunOpts{ID: "probe-apply", Annotations: applyFIFO80ResetOnFork,
		Args: cyclictestArgs(1, rtPriority)})
	probeOther := probe(b, d, harness.RunOpts{ID: "probe-runc-other", Runtime: harness.StockRuntime,
		Args: cyclictestArgs(1, 0)})
	lb.runcRefused = runcRefusal(b, d)

	scenarios := latencyScenarios()
	results := map[string]pooledRun{} // scenario/mode
	for _, sc := range scenarios {
		scBegin := time.Now()
		modes := modesOf(sc)
		// Long enough for every round of every row, with its container's start and end.
		load := newNeighbourLoad(b, d, sc, rounds*len(modes)*(secs+30)+120)
		load.start()
		var sides []latencySide
		for _, m := range modes {
			sides = append(sides, latencySide{key: m.key, measure: func(round int) (latencyRun, error) { return m.run(lb, sc, round) }})
		}
		runs, err := interleave(rounds, sides)
		if err != nil {
			b.Fatalf("%s: %v", sc.name, err)
		}
		for k, r := range runs {
			results[sc.key+"/"+k] = r
		}
		if err := load.stop(); err != nil {
			b.Fatalf("%s: %v", sc.name, err)
		}
		// For the time budget of `make bench`: what each scenario costs.
		fmt.Printf("latency scenario %s: %v\n", sc.key, time.Since(scBegin).Round(100*time.Millisecond))
	}
	reportLatency(b, latencyReport{rounds: rounds, secs: secs, scenarios: scenarios, results: results,
		loadBefore: loadBefore, loadAfter: loadAvg(), took: time.Since(begin),
		probeApply: probeApply, probeOther: probeOther})
}

// lineWith is the first line of s that contains sub, trimmed; sub itself if none does.
func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return sub
}
