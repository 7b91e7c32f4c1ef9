//go:build linux

package bench

// The loads of BenchmarkLatency's scenarios: busy loops in the measured process tree, and
// the neighbours' stressors (busy loops, stress-ng, hackbench), which run in one neighbour
// container through every round of every row of their scenario, the host's included: each
// row wakes up next to the very same processes.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// Paths of the stressors in the container; on the host, under env.Rootfs.
const (
	stressNGPath  = "/usr/bin/stress-ng"
	hackbenchPath = "/usr/bin/hackbench"
	// loadTmp is where the I/O stressor writes: the rootfs's /tmp, a directory of the host's
	// disk file system (the containers run on the rootfs directory itself).
	loadTmp = "/tmp/rtshim-latency-io"
)

// loadReady is what a neighbour's load prints once it runs.
const loadReady = "load running"

// loadSettle is how long the load runs before the measurement starts: stress-ng and
// hackbench fork their workers after they print loadReady, and the first measurement after a
// neighbour's start measured worse in every trial of BenchmarkDocker with less (host p99 253
// and 333 µs against 44-86 µs for the next run): the runtime is still finishing its start.
const loadSettle = 3 * time.Second

// latencyScenario is one kind of load around the measured process tree.
type latencyScenario struct {
	key, name string
	label     string // in the bar charts, short: "memory\n--vm"
	// own: the measured tree is `busy -n <loops> -- <measurer>`, busy loops in its own cgroup.
	own bool
	// neighbour is the load next to the measured tree, in a container (it runs for at least
	// secs seconds and then ends by itself); nil: none.
	neighbour func(secs int) []string
	// what the load is, for the report
	about string
	// calibrate: the host also runs wakelat, to show that it agrees with cyclictest.
	calibrate bool
}

// latencyScenarios are BenchmarkLatency's scenarios, in the report's order. Each stressor has
// one worker per CPU (--switch: one pair of processes per two CPUs; hackbench: one group),
// unpinned like cyclictest, at SCHED_OTHER: wherever the measuring thread wakes up, a stressor
// shares its CPU, and the load is bounded. (Pinning cyclictest and a worker to one CPU would leave out where the kernel places the
// woken RT thread, part of what a container could change; more workers than CPUs only queue
// behind each other and make runs differ more.)
func latencyScenarios() []latencyScenario {
	cpus := strconv.Itoa(runtime.NumCPU())
	loops := strconv.Itoa(busyLoops())
	// stressNG runs stress-ng with args.
	stressNG := func(args ...string) func(int) []string {
		return func(secs int) []string {
			return loadShell(append(append([]string{stressNGPath}, args...), "--timeout", strconv.Itoa(secs)+"s")...)
		}
	}
	return []latencyScenario{
		{key: "idle", label: "idle", name: "idle", about: "nothing else runs", calibrate: true},
		{key: "own", label: "own\nbusy", name: "own container busy", own: true, calibrate: true,
			about: "`busy -n " + loops + " -- <measurer>`: " + loops + " SCHED_OTHER busy loops (4 per CPU) forked around the measurer, in its cgroup"},
		{key: "neighbour", label: "busy\nneighbour", name: "busy neighbour", calibrate: true,
			neighbour: func(secs int) []string {
				return loadShell(busyPath, "-n", loops, "-t", strconv.Itoa(secs))
			},
			about: "`busy -n " + loops + "`: " + loops + " SCHED_OTHER busy loops"},
		{key: "vm", label: "memory\n--vm", name: "memory (stress-ng --vm)", neighbour: stressNG("--vm", cpus, "--vm-bytes", "128M"),
			about: "`stress-ng --vm " + cpus + " --vm-bytes 128M`: mmap, write, check and munmap 128 MiB per worker (page faults, memory bandwidth)"},
		{key: "cache", label: "cache\n--cache", name: "cache (stress-ng --cache)", neighbour: stressNG("--cache", cpus),
			about: "`stress-ng --cache " + cpus + "`: reads and writes across the last-level cache, with cache flushes"},
		{key: "io", label: "I/O\n--hdd", name: "I/O (stress-ng --hdd)", neighbour: stressNG("--hdd", cpus, "--hdd-bytes", "16M", "--temp-path", loadTmp),
			about: "`stress-ng --hdd " + cpus + " --hdd-bytes 16M --temp-path " + loadTmp + "`: writes and reads 16 MiB files on the host's disk file system (the rootfs directory's)"},
		// One pair of processes for the two CPUs: with a pair per CPU (--switch 2) in a
		// container, the pairs' cgroup was seen to starve the root cgroup's SCHED_OTHER tasks
		// (`ctr --version` took 1.7 s instead of 0.04 s, with other work on the host),
		// containerd and the shims among them, so that every container's lifecycle took half
		// a minute; with one pair it took 0.01 s.
		{key: "switch", label: "switches\n--switch", name: "context switches (stress-ng --switch)", neighbour: stressNG("--switch", strconv.Itoa(max(runtime.NumCPU()/2, 1))),
			about: "`stress-ng --switch " + strconv.Itoa(max(runtime.NumCPU()/2, 1)) + "`: pairs of processes (one process per CPU) that wake each other through a pipe"},
		{key: "hackbench", label: "hackbench", name: "hackbench", neighbour: func(secs int) []string {
			// hackbench does a fixed amount of work (about a second per run here): repeat it.
			return []string{"/bin/sh", "-c", `end=$(($(date +%s) + $1)); shift; echo ` + loadReady +
				`; while [ "$(date +%s)" -lt "$end" ]; do "$@" >/dev/null || exit 1; done`,
				"hackbench", strconv.Itoa(secs), hackbenchPath, "-g", "1", "-l", "1000"}
		}, about: "`hackbench -g 1 -l 1000`, run again and again: one group of 20 senders and 20 receivers over UNIX sockets"},
	}
}

// busyLoops is the number of busy loops of the scenarios own and neighbour: 4 per CPU.
func busyLoops() int { return 4 * runtime.NumCPU() }

// loadShell runs argv after printing loadReady.
func loadShell(argv ...string) []string {
	return append([]string{"/bin/sh", "-c", `echo ` + loadReady + `; exec "$@"`, "load"}, argv...)
}

// neighbourLoad is a scenario's load in a neighbour container of the stock runc shim. (It
// once ran on the host during the host's rows and in the container during the containers',
// restarted in between: but a load's start was seen to change the next measurement (see
// loadSettle), and with short interleaved rounds it would restart every round.)
type neighbourLoad struct {
	b      *testing.B
	d      *harness.Daemon
	sc     latencyScenario
	secs   int
	ctr    string // the neighbour container, running
	starts int    // of a neighbour container, for a new id each time
}

// newNeighbourLoad prepares sc's load, to run secs seconds at most; it is stopped when b
// ends, whatever happens.
func newNeighbourLoad(b *testing.B, d *harness.Daemon, sc latencyScenario, secs int) *neighbourLoad {
	b.Helper()
	l := &neighbourLoad{b: b, d: d, sc: sc, secs: secs}
	tmp := filepath.Join(env.Rootfs, loadTmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.stop(); err != nil {
			b.Errorf("stop the %s load: %v", sc.key, err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			b.Errorf("remove the I/O stressor's files: %v", err)
		}
	})
	return l
}

// start starts the neighbour container and waits until its load runs and has settled; a
// scenario without a neighbour has nothing to run.
func (l *neighbourLoad) start() {
	l.b.Helper()
	if l.sc.neighbour == nil || l.ctr != "" {
		return
	}
	// A new id each time: a neighbour that reused the id of one just removed was once found
	// stopped at its end with nothing wrong in its output (not looked into).
	l.starts++
	l.ctr = fmt.Sprintf("load-%s-%d", l.sc.key, l.starts)
	l.d.Start(l.b, harness.RunOpts{ID: l.ctr, Runtime: harness.StockRuntime, Args: l.sc.neighbour(l.secs)}, loadReady)
	time.Sleep(loadSettle)
}

// stop removes the neighbour container. A load that ended before it is an error: the
// measurements since it ended did not have their load.
func (l *neighbourLoad) stop() error {
	id := l.ctr
	if id == "" {
		return nil
	}
	l.ctr = ""
	var early error
	if taskStopped(l.b, l.d, id) {
		out, _ := os.ReadFile(l.d.OutputFile(id))
		early = fmt.Errorf("the neighbour %s ended before the measurement did: %s", id, out)
	}
	if err := l.d.RemoveErr(id); err != nil {
		return errors.Join(early, fmt.Errorf("remove the neighbour %s: %w", id, err))
	}
	return early
}

// TestLatencyScenarios: a neighbour's load runs a program of the rootfs through /bin/sh, and
// ends by itself after the seconds it was given.
func TestLatencyScenarios(t *testing.T) {
	for _, sc := range latencyScenarios() {
		if sc.neighbour == nil {
			continue
		}
		argv := sc.neighbour(4321)
		if argv[0] != "/bin/sh" || !slices.ContainsFunc(argv, func(a string) bool {
			return slices.Contains([]string{busyPath, stressNGPath, hackbenchPath}, a)
		}) {
			t.Errorf("%s: %q runs no program of the rootfs through /bin/sh", sc.key, argv)
		}
		if !slices.ContainsFunc(argv, func(a string) bool { return strings.HasPrefix(a, "4321") }) {
			t.Errorf("%s: %q is not bounded by the seconds it was given", sc.key, argv)
		}
	}
}

// TestMeasuredTree: the host runs the measurer at once, under the rootfs; a container runs it
// measureDelay after its start, through its own /bin/sh; own puts busy loops around either.
func TestMeasuredTree(t *testing.T) {
	host := measuredTree(false, "/rootfs", 2, []string{cyclictestPath, "-D", "2"})
	if got := strings.Join(host, " "); got != "/rootfs"+cyclictestPath+" -D 2" {
		t.Errorf("host: %q", got)
	}
	ctr := measuredTree(true, "", 2, []string{cyclictestPath, "-D", "2"})
	want := busyPath + " -n " + strconv.Itoa(busyLoops()) + " -t 122 -- /bin/sh -c " + `sleep "$0" && exec "$@"` + " " + strconv.FormatFloat(measureDelay.Seconds(), 'f', -1, 64) + " " + cyclictestPath + " -D 2"
	if got := strings.Join(ctr, " "); got != want {
		t.Errorf("container:\n got %q\nwant %q", got, want)
	}
}
