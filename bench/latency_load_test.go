//go:build linux

package bench

// The loads of BenchmarkLatency's scenarios: busy loops in the measured process tree, and
// the neighbours' stressors (busy loops, stress-ng, hackbench), which run next to the
// measured tree on the host for the host's rows and in a neighbour container for the
// containers' rows, with the same command line and size.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// Paths of the stressors in the container; on the host, under env.Rootfs.
const (
	stressNGPath  = "/usr/bin/stress-ng"
	hackbenchPath = "/usr/bin/hackbench"
	// loadTmp is where the I/O stressor writes: the rootfs's /tmp, a directory of the host's
	// file system that the host's run and the container's share (the containers run on the
	// rootfs directory itself), so both write to the same file system.
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
	// neighbour is the load next to the measured tree (paths under root, which is "" in a
	// container and env.Rootfs on the host; it runs for at least secs seconds and then ends
	// by itself); nil: none.
	neighbour func(root string, secs int) []string
	// what the load is, for the report
	about string
	// calibrate: the host also runs wakelat, to show that it agrees with cyclictest.
	calibrate bool
}

// latencyScenarios are BenchmarkLatency's scenarios, in the report's order. Each stressor has
// one worker per CPU (--switch: one pair of processes per two CPUs; hackbench: one group),
// unpinned like cyclictest, at SCHED_OTHER: wherever the measuring thread wakes up, a stressor
// shares its CPU, and the load is bounded, so the host's run and the containers' see the same
// one. (Pinning cyclictest and a worker to one CPU would leave out where the kernel places the
// woken RT thread, part of what a container could change; more workers than CPUs only queue
// behind each other and make runs differ more.)
func latencyScenarios() []latencyScenario {
	cpus := strconv.Itoa(runtime.NumCPU())
	loops := strconv.Itoa(busyLoops())
	// stressNG runs stress-ng with args; "<root>" in them is the root (the I/O stressor's
	// directory).
	stressNG := func(args ...string) func(string, int) []string {
		return func(root string, secs int) []string {
			argv := []string{root + stressNGPath}
			for _, a := range args {
				argv = append(argv, strings.ReplaceAll(a, "<root>", root))
			}
			return loadShell(append(argv, "--timeout", strconv.Itoa(secs)+"s")...)
		}
	}
	return []latencyScenario{
		{key: "idle", label: "idle", name: "idle", about: "nothing else runs", calibrate: true},
		{key: "own", label: "own\nbusy", name: "own container busy", own: true, calibrate: true,
			about: "`busy -n " + loops + " -- <measurer>`: " + loops + " SCHED_OTHER busy loops (4 per CPU) forked around the measurer, in its cgroup"},
		{key: "neighbour", label: "busy\nneighbour", name: "busy neighbour", calibrate: true,
			neighbour: func(root string, secs int) []string {
				return loadShell(root+busyPath, "-n", loops, "-t", strconv.Itoa(secs))
			},
			about: "`busy -n " + loops + "`: " + loops + " SCHED_OTHER busy loops"},
		{key: "vm", label: "memory\n--vm", name: "memory (stress-ng --vm)", neighbour: stressNG("--vm", cpus, "--vm-bytes", "128M"),
			about: "`stress-ng --vm " + cpus + " --vm-bytes 128M`: mmap, write, check and munmap 128 MiB per worker (page faults, memory bandwidth)"},
		{key: "cache", label: "cache\n--cache", name: "cache (stress-ng --cache)", neighbour: stressNG("--cache", cpus),
			about: "`stress-ng --cache " + cpus + "`: reads and writes across the last-level cache, with cache flushes"},
		{key: "io", label: "I/O\n--hdd", name: "I/O (stress-ng --hdd)", neighbour: stressNG("--hdd", cpus, "--hdd-bytes", "16M", "--temp-path", "<root>"+loadTmp),
			about: "`stress-ng --hdd " + cpus + " --hdd-bytes 16M --temp-path " + loadTmp + "`: writes and reads 16 MiB files on the host's disk file system (the rootfs directory's)"},
		// One pair of processes for the two CPUs: with a pair per CPU (--switch 2) in a
		// container, the pairs' cgroup was seen to starve the root cgroup's SCHED_OTHER tasks
		// (`ctr --version` took 1.7 s instead of 0.04 s, with other work on the host),
		// containerd and the shims among them, so that every container's lifecycle took half
		// a minute; with one pair it took 0.01 s.
		{key: "switch", label: "switches\n--switch", name: "context switches (stress-ng --switch)", neighbour: stressNG("--switch", strconv.Itoa(max(runtime.NumCPU()/2, 1))),
			about: "`stress-ng --switch " + strconv.Itoa(max(runtime.NumCPU()/2, 1)) + "`: pairs of processes (one process per CPU) that wake each other through a pipe"},
		{key: "hackbench", label: "hackbench", name: "hackbench", neighbour: func(root string, secs int) []string {
			// hackbench does a fixed amount of work (about a second per run here): repeat it.
			return []string{"/bin/sh", "-c", `end=$(($(date +%s) + $1)); shift; echo ` + loadReady +
				`; while [ "$(date +%s)" -lt "$end" ]; do "$@" >/dev/null || exit 1; done`,
				"hackbench", strconv.Itoa(secs), root + hackbenchPath, "-g", "1", "-l", "1000"}
		}, about: "`hackbench -g 1 -l 1000`, run again and again: one group of 20 senders and 20 receivers over UNIX sockets"},
	}
}

// busyLoops is the number of busy loops of the scenarios own and neighbour: 4 per CPU.
func busyLoops() int { return 4 * runtime.NumCPU() }

// loadShell runs argv after printing loadReady.
func loadShell(argv ...string) []string {
	return append([]string{"/bin/sh", "-c", `echo ` + loadReady + `; exec "$@"`, "load"}, argv...)
}

// neighbourLoad is a scenario's load, on the host or in a neighbour container: at most one
// runs at a time, and each stops before the other starts.
type neighbourLoad struct {
	b        *testing.B
	d        *harness.Daemon
	sc       latencyScenario
	secs     int
	host     *exec.Cmd  // the host's load, running
	hostOut  string     // its output file
	hostDone chan error // its exit
	ctr      string     // the neighbour container, running
	starts   int        // of a neighbour container, for a new id each time
}

// newNeighbourLoad prepares sc's load; it is stopped when b ends, whatever happens.
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

// on makes the load run on the host (host) or in the neighbour container, and waits until it
// does; a scenario without a neighbour has nothing to run.
func (l *neighbourLoad) on(host bool) {
	l.b.Helper()
	if l.sc.neighbour == nil || host && l.host != nil || !host && l.ctr != "" {
		return
	}
	if err := l.stop(); err != nil {
		l.b.Fatalf("%s: %v", l.sc.name, err)
	}
	// Long enough for every run of the one side: two measurements and their containers'
	// start and end.
	secs := 2*l.secs + 120
	if host {
		if err := l.startHost(l.sc.neighbour(env.Rootfs, secs)); err != nil {
			l.b.Fatalf("%s: %v", l.sc.name, err)
		}
	} else {
		// A new id each time: a neighbour that reused the id of one just removed was once
		// found stopped at its end with nothing wrong in its output (not looked into).
		l.starts++
		l.ctr = fmt.Sprintf("load-%s-%d", l.sc.key, l.starts)
		l.d.Start(l.b, harness.RunOpts{ID: l.ctr, Runtime: harness.StockRuntime, Args: l.sc.neighbour("", secs)}, loadReady)
	}
	time.Sleep(loadSettle)
}

// startHost starts argv on the host, SCHED_OTHER in the root cpu cgroup as the measured tree
// (runOnHost), in a process group of its own, and waits until it prints loadReady.
func (l *neighbourLoad) startHost(argv []string) error {
	out := filepath.Join(l.b.TempDir(), "load-"+l.sc.key+".out")
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	if procs := harness.CPUV1("cgroup.procs"); harness.Exists(procs) {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `echo $$ >"$0" && exec "$@"`, procs}, argv...)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the host's load %v: %w", argv, err)
	}
	l.host, l.hostOut, l.hostDone = cmd, out, make(chan error, 1)
	go func() { l.hostDone <- cmd.Wait() }()
	for deadline := time.Now().Add(env.Timeouts.Output); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), loadReady) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the host's load %v: no %q within %v: %s", argv, loadReady, env.Timeouts.Output, b)
		}
	}
}

// stop stops the running load: the host's process group (SIGTERM, so that stress-ng removes
// its files; SIGKILL after 10 s), or the neighbour container. A load that ended before it is
// an error: the runs since it started did not have their load.
func (l *neighbourLoad) stop() error {
	var early error
	if cmd := l.host; cmd != nil {
		l.host = nil
		pgid := cmd.Process.Pid
		select {
		case err := <-l.hostDone:
			if err == nil {
				err = errors.New("exit status 0")
			}
			out, _ := os.ReadFile(l.hostOut)
			early = fmt.Errorf("the host's load %v ended before the measurement did (%w): %s", cmd.Args, err, out)
		default:
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-l.hostDone:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-l.hostDone
			}
		}
		// The group's other members (stress-ng's workers, hackbench's tasks) may outlive the
		// leader by a moment.
		if err := waitGroupGone(pgid, 10*time.Second); err != nil {
			return errors.Join(early, err)
		}
	}
	if id := l.ctr; id != "" {
		l.ctr = ""
		if taskStopped(l.b, l.d, id) {
			out, _ := os.ReadFile(l.d.OutputFile(id))
			early = fmt.Errorf("the neighbour %s ended before the measurement did: %s", id, out)
		}
		if err := l.d.RemoveErr(id); err != nil {
			return errors.Join(early, fmt.Errorf("remove the neighbour %s: %w", id, err))
		}
	}
	return early
}

// waitGroupGone waits until process group pgid has no member left, killing what is left
// after half of timeout.
func waitGroupGone(pgid int, timeout time.Duration) error {
	begin := time.Now()
	killed := false
	for !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		switch since := time.Since(begin); {
		case since > timeout:
			return fmt.Errorf("process group %d still has members %v after SIGTERM", pgid, timeout)
		case since > timeout/2 && !killed:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killed = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// TestLatencyScenarios: on the host, a neighbour's load names every file of the rootfs under
// the rootfs (a host's stressor that writes to a directory missing on the host aborts at
// once, and the host's run has no load); in a container, at the container's path.
func TestLatencyScenarios(t *testing.T) {
	rootfsPaths := []string{busyPath, stressNGPath, hackbenchPath, loadTmp}
	for _, sc := range latencyScenarios() {
		if sc.neighbour == nil {
			continue
		}
		for _, root := range []string{"", "/rootfs"} {
			argv := sc.neighbour(root, 5)
			named := 0
			for _, a := range argv {
				for _, p := range rootfsPaths {
					if strings.HasSuffix(a, p) {
						named++
						if a != root+p {
							t.Errorf("%s, root %q: %q, want %q", sc.key, root, a, root+p)
						}
					}
				}
			}
			if named == 0 || argv[0] != "/bin/sh" {
				t.Errorf("%s, root %q: %q runs no program of the rootfs through /bin/sh", sc.key, root, argv)
			}
		}
	}
}
