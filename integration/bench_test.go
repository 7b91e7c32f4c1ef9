//go:build linux

package integration

// The benchmarks measure the rt shim against the stock runc shim, in one
// private containerd, interleaved. `make bench` runs them (as root) with
// -benchtime 1x: each benchmark does its whole measurement once, whatever
// b.N, and reports it through b.ReportMetric and a table on stdout. A missed
// goal is printed as MISS, not failed: these are measurements; a container
// that fails to run does fail the benchmark.
//
//	RTSHIM_BENCH_ROUNDS  rounds of BenchmarkLifecycle (default 30)

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Goals: the rt shim's figure over the stock runc shim's.
const (
	goalNonRT = 1.05 // ctr run --rm median wall time, no RT request
	goalRT    = 1.10 // ctr run --rm median wall time, SCHED_FIFO request (ignored by runc)
	goalRSS   = 1.10 // shim RSS
)

// lifecycleKind is one of the four containers each round of BenchmarkLifecycle runs.
type lifecycleKind struct {
	name        string // for the table
	metric      string // for ReportMetric units
	runtime     string
	annotations map[string]string
}

var lifecycleKinds = []lifecycleKind{
	{"rt shim, no request", "rt-nonrt", rtRuntime, nil},
	{"runc shim, no request", "runc-nonrt", stockRuntime, nil},
	{"rt shim, SCHED_FIFO 80", "rt-rt", rtRuntime, fifo80},
	{"runc shim, same annotations", "runc-rt", stockRuntime, fifo80},
}

// latinSquare orders the kinds of round r as (r+latinSquare[i]) mod 4: a
// balanced Latin square (Williams design), so over every 4 rounds each kind
// runs once in each position and right after each other kind once.
var latinSquare = [4]int{0, 1, 3, 2}

// BenchmarkLifecycle times `ctr run --rm <rootfs> /bin/true` through each
// runtime, with and without a real-time request.
func BenchmarkLifecycle(b *testing.B) {
	requireRoot(b)
	rounds := 30
	if s := os.Getenv("RTSHIM_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("RTSHIM_BENCH_ROUNDS=%q: want a positive integer", s)
		}
		rounds = n
	}
	d := startContainerd(b)

	run := func(k int, id string) time.Duration {
		kind := lifecycleKinds[k]
		start := time.Now()
		out, code, err := d.Run(b, RunOpts{ID: id, Runtime: kind.runtime, Annotations: kind.annotations, Args: []string{"/bin/true"}})
		elapsed := time.Since(start)
		if err != nil || code != 0 {
			b.Fatalf("%s (%s): exit %d, %v; output:\n%s", id, kind.name, code, err, out)
		}
		return elapsed
	}
	for w := range 2 {
		for k := range lifecycleKinds {
			run(k, fmt.Sprintf("warmup-%d-%s", w, lifecycleKinds[k].metric))
		}
	}

	b.ResetTimer()
	loadBefore := loadAvg()
	times := make([][]float64, len(lifecycleKinds)) // ms, by kind, in round order
	for r := range rounds {
		for _, off := range latinSquare {
			k := (r + off) % len(lifecycleKinds)
			times[k] = append(times[k], ms(run(k, fmt.Sprintf("bench-%d-%s", r, lifecycleKinds[k].metric))))
		}
	}
	b.StopTimer()

	var t strings.Builder
	fmt.Fprintf(&t, "\nLifecycle: `ctr run --rm` of /bin/true, wall time of each ctr run, %d rounds of 4 kinds\n", rounds)
	fmt.Fprintf(&t, "interleaved (balanced Latin square order), after 2 warm-up runs each; load average %s -> %s\n\n", loadBefore, loadAvg())
	fmt.Fprintf(&t, "  %-30s %9s %9s %9s %9s\n", "kind", "min ms", "median ms", "p95 ms", "max ms")
	for k, kind := range lifecycleKinds {
		xs := times[k]
		fmt.Fprintf(&t, "  %-30s %9.1f %9.1f %9.1f %9.1f\n", kind.name,
			percentile(xs, 0), median(xs), percentile(xs, 95), percentile(xs, 100))
		b.ReportMetric(median(xs), "ms-median-"+kind.metric)
		b.ReportMetric(percentile(xs, 95), "ms-p95-"+kind.metric)
	}
	fmt.Fprintf(&t, "\n  %-30s %7s %7s %17s %7s %9s\n", "rt shim / runc shim", "median", "goal", "95% CI (bootstr.)", "paired", "p95 ratio")
	for _, c := range []struct {
		name, metric string
		num, den     int
		goal         float64
	}{
		{"non-RT containers", "rt/runc-nonrt-ratio", 0, 1, goalNonRT},
		{"RT containers", "rt/runc-rt-ratio", 2, 3, goalRT},
	} {
		num, den := times[c.num], times[c.den]
		ratio := median(num) / median(den)
		lo, hi := ratioCI(num, den)
		fmt.Fprintf(&t, "  %-30s %7.3f %7s %8.3f - %-6.3f %7.3f %9.3f  %s\n", c.name, ratio, fmt.Sprintf("≤ %.2f", c.goal),
			lo, hi, pairedRatio(num, den), percentile(num, 95)/percentile(den, 95), verdict(ratio, c.goal))
		b.ReportMetric(ratio, c.metric)
	}
	fmt.Fprintf(&t, "  (paired: median over rounds of the per-round ratio)\n")
	fmt.Print(t.String())
	b.ReportMetric(0, "ns/op") // the benchmark's own wall time means nothing
}

// BenchmarkShimMemory measures the resident memory of the shim process of
// long-running containers, and the size of both shim binaries.
func BenchmarkShimMemory(b *testing.B) {
	requireRoot(b)
	const perRuntime = 5
	d := startContainerd(b)

	type shimMem struct{ rss, pss []float64 } // KiB
	runtimes := []struct {
		name, metric, runtime, binary string
	}{
		{"rt shim, SCHED_FIFO 80", "rt", rtRuntime, filepath.Join(binDir, "containerd-shim-rt-v2")},
		{"runc shim", "runc", stockRuntime, filepath.Join(toolsDir, "containerd-shim-runc-v2")},
	}
	mem := make([]shimMem, len(runtimes))
	var ids []string
	var idRuntime []int
	// Interleaved, all running at once: both runtimes see the same host.
	for i := range perRuntime {
		for r, rt := range runtimes {
			id := fmt.Sprintf("mem-%s-%d", rt.metric, i)
			// The same annotations for both: the stock shim ignores them.
			d.start(b, RunOpts{ID: id, Runtime: rt.runtime, Annotations: fifo80,
				Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")
			ids, idRuntime = append(ids, id), append(idRuntime, r)
		}
	}
	time.Sleep(time.Second) // let the shims settle after Start
	fromPidFile := 0
	for i, id := range ids {
		pid, viaFile, err := d.shimPid(id)
		if err != nil {
			b.Fatal(err)
		}
		if viaFile {
			fromPidFile++
		}
		rss, err := procKiB(pid, "status", "VmRSS:")
		if err != nil {
			b.Fatal(err)
		}
		pss, err := procKiB(pid, "smaps_rollup", "Pss:")
		if err != nil {
			b.Fatal(err)
		}
		m := &mem[idRuntime[i]]
		m.rss, m.pss = append(m.rss, rss), append(m.pss, pss)
	}
	for _, id := range ids {
		d.remove(b, id)
	}

	var t strings.Builder
	fmt.Fprintf(&t, "\nShim memory: the shim process of %d detached containers per runtime (all running at once),\n", perRuntime)
	fmt.Fprintf(&t, "1s after start; Pss splits the pages the %d shims of a runtime share; shim pids of %d of %d\n", perRuntime, fromPidFile, len(ids))
	fmt.Fprintf(&t, "from the bundle's shim.pid, the others by their command line\n\n")
	fmt.Fprintf(&t, "  %-24s %12s %12s %12s %12s\n", "shim", "RSS min KiB", "RSS med KiB", "RSS max KiB", "Pss med KiB")
	for r, rt := range runtimes {
		m := mem[r]
		fmt.Fprintf(&t, "  %-24s %12.0f %12.0f %12.0f %12.0f\n", rt.name, percentile(m.rss, 0), median(m.rss), percentile(m.rss, 100), median(m.pss))
		b.ReportMetric(median(m.rss), "KiB-rss-"+rt.metric)
		b.ReportMetric(median(m.pss), "KiB-pss-"+rt.metric)
	}
	rssRatio := median(mem[0].rss) / median(mem[1].rss)
	pssRatio := median(mem[0].pss) / median(mem[1].pss)
	fmt.Fprintf(&t, "\n  %-24s %7.3f  goal ≤ %.2f  %s\n", "RSS rt / runc (median)", rssRatio, goalRSS, verdict(rssRatio, goalRSS))
	fmt.Fprintf(&t, "  %-24s %7.3f\n", "Pss rt / runc (median)", pssRatio)
	b.ReportMetric(rssRatio, "rt/runc-rss-ratio")
	b.ReportMetric(pssRatio, "rt/runc-pss-ratio")

	fmt.Fprintf(&t, "\n  binary sizes (both static and stripped; the containerd module each is built from or links):\n")
	var sizes []int64
	for _, rt := range runtimes {
		st, err := os.Stat(rt.binary)
		if err != nil {
			b.Fatal(err)
		}
		sizes = append(sizes, st.Size())
		fmt.Fprintf(&t, "  %-24s %10d bytes  %6.2f MiB  containerd %s  %s\n", rt.name, st.Size(),
			float64(st.Size())/(1<<20), containerdVersion(rt.binary), rt.binary)
		b.ReportMetric(float64(st.Size()), "bytes-bin-"+rt.metric)
	}
	fmt.Fprintf(&t, "  %-24s %10.3f\n", "size rt / runc", float64(sizes[0])/float64(sizes[1]))
	fmt.Print(t.String())
	b.ReportMetric(0, "ns/op")
}

// shimPid returns the pid of container id's shim: from the shim.pid file
// containerd keeps in the task's bundle, checked against the process's
// command line; else the process whose command line has `-id <id>` and
// names the daemon's address. viaFile tells which.
func (d *Daemon) shimPid(id string) (pid int, viaFile bool, err error) {
	isShim := func(pid int) bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return false
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		var hasID, hasAddr bool
		for i, a := range args {
			hasID = hasID || (a == "-id" && i+1 < len(args) && args[i+1] == id)
			hasAddr = hasAddr || a == d.Address
		}
		return hasID && hasAddr
	}
	pidFile := filepath.Join(d.Dir, bundlesDir, d.Namespace, id, "shim.pid")
	b, err := os.ReadFile(pidFile)
	if err == nil {
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr == nil && isShim(pid) {
			return pid, true, nil
		}
		err = fmt.Errorf("%s: %q is not the shim of %s", pidFile, b, id)
	}
	ents, rerr := os.ReadDir("/proc")
	if rerr != nil {
		return 0, false, rerr
	}
	for _, e := range ents {
		if pid, perr := strconv.Atoi(e.Name()); perr == nil && isShim(pid) {
			return pid, false, nil
		}
	}
	return 0, false, fmt.Errorf("no shim process for container %s (%v)", id, err)
}

// procKiB reads the "<key> <n> kB" line of /proc/<pid>/<file>.
func procKiB(pid int, file, key string) (float64, error) {
	path := fmt.Sprintf("/proc/%d/%s", pid, file)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := strings.Fields(string(rest))
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseFloat(f[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %q line in kB", path, key)
}

// containerdVersion is the version of the containerd module binary was built
// from or links, from its Go build info; "?" when unknown.
func containerdVersion(binary string) string {
	const mod = "github.com/containerd/containerd/v2"
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return "?"
	}
	if bi.Main.Path == mod {
		return bi.Main.Version
	}
	for _, dep := range bi.Deps {
		if dep.Path == mod {
			if dep.Replace != nil {
				return dep.Replace.Path + "@" + dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "?"
}

// loadAvg is the host's 1-minute load average, for the table: other work on
// the host skews the times.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
