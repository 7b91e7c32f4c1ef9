//go:build linux

package bench

// Latency benchmarks: wake-up latency with Debian's cyclictest (BenchmarkLatency) and the
// mixed application under a CFS quota (BenchmarkQuota), on the host, through the rt shim and
// through the stock runc shim. `make bench` runs them with RTSHIM_ROOTFS pointing at
// _output/rootfs-bench, the test rootfs plus cyclictest and its libraries (make rootfs-bench).
//
//	RTSHIM_BENCH_SECONDS     seconds of each measurement (default 10)
//
// See lifecycle_test.go for how the benchmarks run and report.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/internal/harness"
)

// Goals under contention (own container busy, busy neighbour): the rt container's p99 within
// max(goalHostFactor × host p99, host p99 + goalHostSlackUS), and goalVsRunc times better
// than the stock runc container's.
const (
	goalHostFactor  = 1.2
	goalHostSlackUS = 20
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

// requireBenchRootfs fails unless RTSHIM_ROOTFS has cyclictest (make rootfs-bench).
func requireBenchRootfs(b *testing.B) {
	b.Helper()
	for _, p := range []string{cyclictestPath, busyPath, mixedAppPath, wakelatPath} {
		if !harness.Exists(filepath.Join(env.Rootfs, p)) {
			b.Fatalf("RTSHIM_ROOTFS=%s has no %s: run the benchmarks with `make bench`, which builds _output/rootfs-bench (the test rootfs plus cyclictest)", env.Rootfs, p)
		}
	}
}

// cyclictestArgs measures one thread at 1 kHz for secs seconds; prio 0 runs it SCHED_OTHER.
// --default-system: no /dev/cpu_dma_latency request (containers have no such device, and it
// would change the host's power management while it runs).
func cyclictestArgs(bin string, secs, prio int) []string {
	args := []string{bin, "-i", "1000", "-D", strconv.Itoa(secs), "-q", "--default-system",
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

// runToEnd runs a container detached and waits for it to exit: after a quick look for an
// early exit, it sleeps until expect has passed, then polls. started runs once the container
// runs, stopped once it has exited and before it is deleted (its cgroup is still there).
// The container is deleted; its output and exit status are returned.
func runToEnd(b *testing.B, d *harness.Daemon, o harness.RunOpts, expect time.Duration, started, stopped func()) (string, int, error) {
	b.Helper()
	o.Detach = true
	begin := time.Now()
	if out, _, err := d.Run(b, o); err != nil {
		return out, -1, err
	}
	if started != nil {
		started()
	}
	deadline := begin.Add(expect + 60*time.Second)
	wait := 300 * time.Millisecond
	for {
		time.Sleep(wait)
		if taskStopped(b, d, o.ID) {
			break
		}
		if time.Now().After(deadline) {
			_ = d.RemoveErr(o.ID)
			return "", -1, fmt.Errorf("container %s still runs %v after its start", o.ID, time.Since(begin).Round(time.Second))
		}
		wait = max(time.Until(begin.Add(expect)), 200*time.Millisecond)
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

// latencyMode is one way to run the measured process tree.
type latencyMode struct {
	key, name string
	short     string // for the figures' legends; "" keeps it out of the figures (the calibration run)
}

var latencyModes = []latencyMode{
	{"host", "host, chrt -R -f 80", "host"},
	{"rt", "rt shim", "rt shim"},
	{"runc", "runc shim", "runc shim"},
	{"host-wakelat", "host, chrt -R -f 80", ""},
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

// BenchmarkLatency measures the wake-up latency of one thread at 1 kHz with cyclictest, in
// three scenarios (idle; the container's own process tree busy with 4 SCHED_OTHER loops per
// CPU; a busy neighbour container with as many) and three ways to run it: the same process
// tree on the host under chrt -R -f 80, a container of the rt shim, and one of the stock
// runc shim. There cyclictest cannot start at all (it insists on switching to SCHED_FIFO
// first, even with --policy=other), so /bin/wakelat, cyclictest's measuring loop, measures
// at SCHED_OTHER instead; wakelat also runs on the host, to show it agrees with cyclictest.
func BenchmarkLatency(b *testing.B) {
	env.RequireRoot(b)
	requireBenchRootfs(b)
	secs := benchSeconds(b)
	loops := 4 * runtime.NumCPU()
	d := startContainerd(b)
	keepLog(b, d)
	expect := time.Duration(secs) * time.Second
	loadBefore := loadAvg()

	version := "?"
	if out, _ := exec.Command(filepath.Join(env.Rootfs, cyclictestPath), "--help").CombinedOutput(); len(out) > 0 {
		if v, ok := strings.CutPrefix(firstLine(string(out)), "cyclictest V "); ok {
			version = v
		}
	}
	// Probes: what does not work, and how it fails.
	probeApply := probe(b, d, harness.RunOpts{ID: "probe-apply", Annotations: applyFIFO80ResetOnFork,
		Args: cyclictestArgs(cyclictestPath, 1, rtPriority)})
	probeOther := probe(b, d, harness.RunOpts{ID: "probe-runc-other", Runtime: harness.StockRuntime,
		Args: cyclictestArgs(cyclictestPath, 1, 0)})

	scenarios := []struct{ key, name string }{
		{"idle", "idle"},
		{"own", "own container busy"},
		{"neighbour", "busy neighbour"},
	}
	results := map[string]latencyRun{} // scenario/mode
	for _, sc := range scenarios {
		// tree is the measured process tree, with paths under root.
		tree := func(root string, measure []string) []string {
			measure[0] = root + measure[0]
			if sc.key != "own" {
				return measure
			}
			return append([]string{root + busyPath, "-n", strconv.Itoa(loops), "-t", strconv.Itoa(secs + 120), "--"}, measure...)
		}
		cyclictest := func(prio int) []string { return cyclictestArgs(cyclictestPath, secs, prio) }
		wakelat := func(prio int) []string {
			return []string{wakelatPath, "-i", "1000", "-D", strconv.Itoa(secs), "-p", strconv.Itoa(prio)}
		}
		if sc.key == "neighbour" {
			d.Start(b, harness.RunOpts{ID: "neighbour", Runtime: harness.StockRuntime,
				Args: []string{busyPath, "-n", strconv.Itoa(loops), "-t", strconv.Itoa(4*secs + 300)}}, "busy n=")

		}
		for _, m := range latencyModes {
			var out string
			var code int
			var err error
			run := latencyRun{policy: fmt.Sprintf("SCHED_FIFO %d", rtPriority), tool: "cyclictest"}
			switch m.key {
			case "host":
				out, code, err = runOnHost(b, expect+60*time.Second, tree(env.Rootfs, cyclictest(rtPriority))...)
			case "host-wakelat":
				run.tool = "wakelat"
				out, code, err = runOnHost(b, expect+60*time.Second, tree(env.Rootfs, wakelat(rtPriority))...)
			case "rt":
				out, code, err = runToEnd(b, d, harness.RunOpts{ID: sc.key + "-rt", Annotations: grantFIFO80,
					Args: tree("", cyclictest(rtPriority))}, expect, nil, nil)
			case "runc":
				out, code, err = runToEnd(b, d, harness.RunOpts{ID: sc.key + "-runc-cyclictest", Runtime: harness.StockRuntime, Annotations: grantFIFO80,
					Args: tree("", cyclictest(rtPriority))}, expect, nil, nil)
				if err == nil && code != 0 && strings.Contains(out, rtRefused) {
					run.policy, run.tool = "SCHED_OTHER", "wakelat"
					run.note = fmt.Sprintf("cyclictest -p %d: %q", rtPriority, lineWith(out, rtRefused))
					out, code, err = runToEnd(b, d, harness.RunOpts{ID: sc.key + "-runc", Runtime: harness.StockRuntime, Annotations: grantFIFO80,
						Args: tree("", wakelat(0))}, expect, nil, nil)
				}
			}
			if err != nil || code != 0 {
				b.Fatalf("%s, %s: exit %d, %v; output:\n%s", sc.name, m.name, code, err, out)
			}
			if run.lat, err = parseCyclictest(out); err != nil {
				b.Fatalf("%s, %s: %v", sc.name, m.name, err)
			}
			results[sc.key+"/"+m.key] = run
		}
		if sc.key == "neighbour" {
			d.Remove(b, "neighbour")
		}
	}
	loadAfter := loadAvg()

	s := newSection("30-latency", "Wake-up latency (cyclictest)")
	s.para("Debian's `cyclictest` (rt-tests %s): one measuring thread woken every 1 ms (`-i 1000`) for %d s, "+
		"1 µs histogram buckets. Scenarios: *idle*; *own container busy*: the measured process tree is "+
		"`busy -n %d -- cyclictest ...`, %d SCHED_OTHER busy loops (4 per CPU) forked around cyclictest; *busy "+
		"neighbour*: the same loops in another container (stock runc shim) while cyclictest runs alone. The same "+
		"process tree runs on the host under `chrt -R -f %d` in the root cpu cgroup (the physical limit here: this "+
		"kernel is not PREEMPT_RT), in a container of the rt shim (`rtshim.io/policy=SCHED_FIFO`, `priority=%d`, "+
		"`mode=grant`: the container gets CAP_SYS_NICE and an RT budget, and `cyclictest -p %d` makes only its "+
		"measuring thread SCHED_FIFO), and in a container of the stock runc shim with the same annotations. There "+
		"`cyclictest -p %d` is refused (the container's cgroup has no RT budget), and cyclictest cannot measure at "+
		"SCHED_OTHER either: it will not start unless it can switch to SCHED_FIFO (probe, `cyclictest --policy=other` "+
		"in a runc container: %s). So `/bin/wakelat` (integration/testdata/wakelat.c), cyclictest's measuring loop "+
		"(absolute `clock_nanosleep`, CLOCK_MONOTONIC, missed periods skipped), measures the runc container at "+
		"SCHED_OTHER; the last row of each scenario runs wakelat on the host as cyclictest runs there, to show the two agree. "+
		"Both skip a period whose wake-up time passed before the previous wake-up was measured: fewer samples than "+
		"periods mean wake-ups later than a whole period.",
		version, secs, loops, loops, rtPriority, rtPriority, rtPriority, rtPriority, probeOther)
	s.para("Apply mode with `rtshim.io/reset-on-fork=true` (the container starts SCHED_FIFO, its children and "+
		"threads SCHED_OTHER) cannot run cyclictest: cyclictest first checks that it may switch to SCHED_FIFO, which "+
		"clears reset-on-fork and so needs CAP_SYS_NICE, and its measuring thread is a new thread, started "+
		"SCHED_OTHER. Probe, that container running `cyclictest -p %d`: %s. Programs that set their own threads' "+
		"policy want grant mode; apply mode with reset-on-fork suits a program whose main thread is its RT thread "+
		"(the mixed application below).", rtPriority, probeApply)
	s.para("Load average (1 min) before and after: %s → %s. Other work on the host shows up in every figure.", loadBefore, loadAfter)

	t := newTable("scenario", "runs on", "tool", "measuring thread", "samples", "p50 µs", "p99 µs", "max µs", "note")
	for _, sc := range scenarios {
		for _, m := range latencyModes {
			r := results[sc.key+"/"+m.key]
			t.add(sc.name, m.name, r.tool, r.policy, strconv.FormatInt(r.lat.n, 10),
				us(r.lat.percentile(50)), us(r.lat.percentile(99)), us(float64(r.lat.max)), r.note)
			b.ReportMetric(r.lat.percentile(99), "us-p99-"+sc.key+"-"+m.key)
		}
	}
	fmt.Printf("\nWake-up latency: cyclictest %s -i 1000 -D %d, %d busy loops; load average %s -> %s\n", version, secs, loops, loadBefore, loadAfter)
	fmt.Printf("probe, apply mode with reset-on-fork, cyclictest -p %d: %s\n", rtPriority, probeApply)
	fmt.Printf("probe, runc shim, cyclictest --policy=other: %s\n", probeOther)
	s.table(t)

	bars := plot.Bars{Title: "Wake-up latency p99 (1 kHz)", YLabel: "p99 latency", LogY: true, YFormat: plot.Micros}
	var plotted []latencyMode
	for _, m := range latencyModes {
		if m.short != "" {
			plotted = append(plotted, m)
			bars.Series = append(bars.Series, plot.BarSeries{Name: m.legend(results["own/"+m.key])})
		}
	}
	for _, sc := range scenarios {
		bars.Groups = append(bars.Groups, sc.name)
		h := plot.Histogram{Title: "Wake-up latency, " + sc.name, XLabel: "latency", XFormat: plot.Micros}
		for i, m := range plotted {
			r := results[sc.key+"/"+m.key]
			bars.Series[i].Values = append(bars.Series[i].Values, r.lat.percentile(99))
			h.Series = append(h.Series, r.lat.series(m.legend(r)))
		}
		s.plot(b, sc.key, "latency histogram, "+sc.name, h.WriteSVG)
	}
	s.plot(b, "p99", "p99 latency by scenario", bars.WriteSVG)

	for _, sc := range scenarios[1:] {
		host, rt, runc := results[sc.key+"/host"].lat.percentile(99), results[sc.key+"/rt"].lat.percentile(99),
			results[sc.key+"/runc"].lat.percentile(99)
		limit := math.Max(goalHostFactor*host, host+goalHostSlackUS)
		s.goal(sc.name+": rt shim p99 vs host p99 ("+us(host)+" µs)", us(rt)+" µs",
			fmt.Sprintf("≤ max(%.1f × host, host + %d µs) = %s µs", goalHostFactor, goalHostSlackUS, us(limit)), rt <= limit)
		s.goal(sc.name+": runc shim p99 / rt shim p99", ratio(runc/rt)+" ("+us(runc)+" µs)",
			fmt.Sprintf("≥ %d", goalVsRunc), runc/rt >= goalVsRunc)
	}
	s.save(b)
	b.ReportMetric(0, "ns/op")
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

// firstLine is s's first non-empty line, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if l := strings.TrimSpace(line); l != "" {
			return l
		}
	}
	return ""
}
