//go:build linux

package bench

// The benchmarks measure the rt shim against the stock runc shim, in one
// private containerd, interleaved. `make bench` runs them (as root) with
// -benchtime 1x: each benchmark does its whole measurement once, whatever
// b.N, and reports it through b.ReportMetric and a table on stdout. A missed
// goal is printed as MISS, not failed: these are measurements; a container
// that fails to run does fail the benchmark.
//
//	RTSHIM_BENCH_ROUNDS      rounds of BenchmarkLifecycle (default 100)
//	RTSHIM_BENCH_STOCK_SHIM  the stock shim to compare with, as the absolute
//	                         path of a containerd-shim-runc-v2 binary (ctr
//	                         --runtime takes one); default io.containerd.runc.v2,
//	                         RTSHIM_TOOLS_DIR's. With one built from the
//	                         containerd release the rt shim links, the ratios
//	                         show the wrapper's cost alone.
//	RTSHIM_BENCH_LIBS_SHIM   BenchmarkShimMemory's and BenchmarkLifecycle's third
//	                         comparison: the stock runc shim built from the
//	                         containerd module the rt shim links (make bench
//	                         builds it), to tell the libraries' share of the
//	                         memory and the time from rtshim's
//	RTSHIM_BENCH_LOG_DIR     if set, where to copy each benchmark's containerd
//	                         log (debug level, with the shims' logs), e.g. to
//	                         see where a lifecycle's time goes

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/bench/report"
	"github.com/rtshim/rtshim/internal/harness"
)

// Goals: the rt shim's figure over the stock runc shim's.
const (
	goalNonRT = 1.05 // ctr run --rm median wall time, no RT request
	goalRT    = 1.10 // ctr run --rm median wall time, SCHED_FIFO request (ignored by runc)
	goalRSS   = 1.05 // shim RSS
)

// lifecycleKind is one of the four containers each round of BenchmarkLifecycle runs.
type lifecycleKind struct {
	name        string // for the table
	metric      string // for ReportMetric units
	runtime     string
	annotations map[string]string
}

func lifecycleKinds(stock, libs string) []lifecycleKind {
	return []lifecycleKind{
		{"rt shim, no request", "rt-nonrt", harness.RTRuntime, nil},
		{"runc shim, no request", "runc-nonrt", stock, nil},
		{"rt shim, SCHED_FIFO 80", "rt-rt", harness.RTRuntime, fifo80},
		{"runc shim, same annotations", "runc-rt", stock, fifo80}, // it ignores them
		// The stock shim on the rt shim's containerd libraries: what of the difference the
		// libraries make, and what rtshim's own code.
		{"runc shim, rt's libs, no req.", "libs-nonrt", libs, nil},
		{"runc shim, rt's libs, annot.", "libs-rt", libs, fifo80},
	}
}

// stockShim is the runtime the benchmarks compare with and its binary
// (see RTSHIM_BENCH_STOCK_SHIM).
func stockShim(b *testing.B) (runtime, binary string) {
	b.Helper()
	p := os.Getenv("RTSHIM_BENCH_STOCK_SHIM")
	if p == "" {
		return harness.StockRuntime, filepath.Join(env.ToolsDir, "containerd-shim-runc-v2")
	}
	if _, err := os.Stat(p); err != nil || !filepath.IsAbs(p) {
		b.Fatalf("RTSHIM_BENCH_STOCK_SHIM=%q: want the absolute path of a shim binary (%v)", p, err)
	}
	return p, p
}

// latinSquare orders the kinds of round r as (r+latinSquare[i]) mod 4: a
// balanced Latin square (Williams design), so over every 4 rounds each kind
// runs once in each position and right after each other kind once.
var latinSquare = williams(4)

// williams returns the offsets of a balanced Latin square of n (even) kinds:
// 0, 1, n-1, 2, n-2, ... (see latinSquare).
func williams(n int) []int {
	offs := []int{0}
	for i := 1; len(offs) < n; i++ {
		offs = append(offs, i)
		if len(offs) < n {
			offs = append(offs, n-i)
		}
	}
	return offs
}

// BenchmarkLifecycle times `ctr run --rm <rootfs> /bin/true` through each
// runtime, with and without a real-time request.
func BenchmarkLifecycle(b *testing.B) {
	env.RequireRoot(b)
	rounds := 100
	if s := os.Getenv("RTSHIM_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("RTSHIM_BENCH_ROUNDS=%q: want a positive integer", s)
		}
		rounds = n
	}
	stock, stockBinary := stockShim(b)
	libsBinary := libsShim(b)
	kinds := lifecycleKinds(stock, libsBinary)
	order := williams(len(kinds))
	d := startContainerd(b)
	keepLog(b, d)

	run := func(k int, id string) time.Duration {
		kind := kinds[k]
		start := time.Now()
		out, code, err := d.Run(b, harness.RunOpts{ID: id, Runtime: kind.runtime, Annotations: kind.annotations, Args: []string{"/bin/true"}})
		elapsed := time.Since(start)
		if err != nil || code != 0 {
			b.Fatalf("%s (%s): exit %d, %v; output:\n%s", id, kind.name, code, err, out)
		}
		return elapsed
	}
	for w := range 2 {
		for k := range kinds {
			run(k, fmt.Sprintf("warmup-%d-%s", w, kinds[k].metric))
		}
	}

	loadBefore := loadAvg()
	times := make([][]float64, len(kinds)) // ms, by kind, in round order
	for r := range rounds {
		for _, off := range order {
			k := (r + off) % len(kinds)
			times[k] = append(times[k], ms(run(k, fmt.Sprintf("bench-%d-%s", r, kinds[k].metric))))
		}
	}

	var t strings.Builder
	fmt.Fprintf(&t, "\nLifecycle: `ctr run --rm` of /bin/true, wall time of each ctr run, %d rounds of %d kinds\n", rounds, len(kinds))
	fmt.Fprintf(&t, "interleaved (balanced Latin square order), after 2 warm-up runs each; load average %s -> %s\n", loadBefore, loadAvg())
	fmt.Fprintf(&t, "runc shim: %s (containerd %s)\n", repoRel(stockBinary), containerdVersion(stockBinary))
	fmt.Fprintf(&t, "runc shim, rt's libs: %s (containerd %s, as the rt shim links)\n\n", repoRel(libsBinary), containerdVersion(libsBinary))
	fmt.Fprintf(&t, "  %-30s %9s %9s %9s %9s\n", "kind", "min ms", "median ms", "p95 ms", "max ms")
	for k, kind := range kinds {
		xs := times[k]
		fmt.Fprintf(&t, "  %-30s %9.1f %9.1f %9.1f %9.1f\n", kind.name,
			percentile(xs, 0), median(xs), percentile(xs, 95), percentile(xs, 100))
		b.ReportMetric(median(xs), "ms-median-"+kind.metric)
		b.ReportMetric(percentile(xs, 95), "ms-p95-"+kind.metric)
	}
	s := newSection("10-lifecycle", "Lifecycle")
	fmt.Fprintf(&t, "\n  %-30s %7s %7s %17s %7s %9s\n", "rt shim / runc shim", "median", "goal", "95% CI (bootstr.)", "paired", "p95 ratio")
	type comparison struct {
		name, metric string
		num, den     int
		goal         float64 // 0: no goal, a diagnosis
	}
	for _, c := range []comparison{
		{"non-RT containers", "rt/runc-nonrt-ratio", 0, 1, goalNonRT},
		{"RT containers", "rt/runc-rt-ratio", 2, 3, goalRT},
		{"non-RT, runc on rt's libs", "rt/libs-nonrt-ratio", 0, 4, 0},
		{"RT, runc on rt's libs", "rt/libs-rt-ratio", 2, 5, 0},
	} {
		num, den := times[c.num], times[c.den]
		ratio := median(num) / median(den)
		lo, hi := ratioCI(num, den)
		goal, v := "-", ""
		if c.goal > 0 {
			goal, v = fmt.Sprintf("≤ %.2f", c.goal), verdict(ratio, c.goal)
			s.Goal(report.Goal{Figure: "lifecycle, rt/runc median, " + c.name, Measured: fmt.Sprintf("%.3f", ratio),
				Goal: goal, Verdict: v})
		}
		fmt.Fprintf(&t, "  %-30s %7.3f %7s %8.3f - %-6.3f %7.3f %9.3f  %s\n", c.name, ratio, goal,
			lo, hi, pairedRatio(num, den), percentile(num, 95)/percentile(den, 95), v)
		b.ReportMetric(ratio, c.metric)
	}
	fmt.Fprintf(&t, "  (paired: median over rounds of the per-round ratio)\n")
	for _, c := range []struct {
		name           string
		rt, runc, libs int // kinds
		goal           float64
	}{{"non-RT", 0, 1, 4, goalNonRT}, {"RT", 2, 3, 5, goalRT}} {
		rt, runc, libs := median(times[c.rt]), median(times[c.runc]), median(times[c.libs])
		if rt/runc <= c.goal {
			continue
		}
		// Where the difference lives: in the containerd libraries the rt shim links (the
		// stock shim built from them against the control) or in rtshim's own code (the rt
		// shim against that stock shim). Medians of different kinds do not add up exactly.
		fmt.Fprintf(&t, "  MISS, %s: rt − runc %+.1f ms (medians). Of it: containerd %s's libraries (runc on them − runc) %+.1f ms,\n",
			c.name, rt-runc, containerdVersion(libsBinary), libs-runc)
		fmt.Fprintf(&t, "    rtshim's code (rt − runc on the same libraries) %+.1f ms\n", rt-libs)
	}
	s.pre(t.String())
	bars := plot.Bars{Title: "ctr run --rm of /bin/true", YLabel: "milliseconds",
		Series: []plot.BarSeries{{Name: "median"}, {Name: "p95"}}}
	for k, kind := range kinds {
		bars.Groups = append(bars.Groups, strings.Replace(kind.name, ", ", ",\n", 1))
		bars.Series[0].Values = append(bars.Series[0].Values, median(times[k]))
		bars.Series[1].Values = append(bars.Series[1].Values, percentile(times[k], 95))
	}
	s.plot(b, "times", "lifecycle wall time by kind", bars.WriteSVG)
	s.save(b)
	b.ReportMetric(0, "ns/op") // the benchmark's own wall time means nothing
}

// BenchmarkShimMemory measures the resident memory of the shim process of
// long-running containers, and the size of both shim binaries.
func BenchmarkShimMemory(b *testing.B) {
	env.RequireRoot(b)
	const perRuntime = 5
	rtBinary := filepath.Join(env.BinDir, "containerd-shim-rt-v2")
	stock, runcBinary := stockShim(b)
	d := startContainerd(b)
	keepLog(b, d)

	// The first two are the comparison; the third tells the RT handling's
	// share from the binary's.
	libsBinary := libsShim(b)
	runtimes := []struct {
		name, metric, runtime, binary string
		annotations                   map[string]string
	}{
		{"rt shim, SCHED_FIFO 80", "rt", harness.RTRuntime, rtBinary, fifo80},
		{"runc shim, same annot.", "runc", stock, runcBinary, fifo80}, // it ignores them
		{"rt shim, no request", "rt-nonrt", harness.RTRuntime, rtBinary, nil},
		{"runc shim, rt's libraries", "runc-libs", libsBinary, libsBinary, fifo80},
	}
	mem := make([][]memSample, len(runtimes))
	// The comparisons' runtimes interleaved and running at once, so they see
	// the same host (each binary's 5 shims share its pages, which Pss splits
	// among them); then the rt shim without a request alone, for the same.
	for _, phase := range [][]int{{0, 1, 3}, {2}} {
		var ids []string
		var idRuntime []int
		for i := range perRuntime {
			for _, r := range phase {
				rt := runtimes[r]
				id := fmt.Sprintf("mem-%s-%d", rt.metric, i)
				d.Start(b, harness.RunOpts{ID: id, Runtime: rt.runtime, Annotations: rt.annotations,
					Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")

				ids, idRuntime = append(ids, id), append(idRuntime, r)
			}
		}
		time.Sleep(time.Second) // let the shims settle after Start
		for i, id := range ids {
			pid, err := shimPid(d, id, runtimes[idRuntime[i]].binary)
			if err != nil {
				b.Fatal(err)
			}
			m, err := readMem(pid)
			if err != nil {
				b.Fatal(err)
			}
			mem[idRuntime[i]] = append(mem[idRuntime[i]], m)
		}
		for _, id := range ids {
			d.Remove(b, id)
		}
	}

	var t strings.Builder
	fmt.Fprintf(&t, "\nShim memory: the shim process of %d detached containers per runtime, 1s after the last start;\n", perRuntime)
	fmt.Fprintf(&t, "Pss splits the pages the %d running shims of a binary share, USS (Private_Clean+Private_Dirty) counts\n", perRuntime)
	fmt.Fprintf(&t, "a shim's own pages only\n\n")
	fmt.Fprintf(&t, "  %-24s %8s %8s %8s %8s %8s %8s %8s\n", "KiB (median unless said)", "RSS min", "RSS", "RSS max", "RssAnon", "RssFile", "Pss", "USS")
	// med is the median of one field over runtime r's shims.
	med := func(r int, field func(memSample) float64) float64 {
		var xs []float64
		for _, m := range mem[r] {
			xs = append(xs, field(m))
		}
		return median(xs)
	}
	rss := func(m memSample) float64 { return m.rss }
	pss := func(m memSample) float64 { return m.pss }
	uss := func(m memSample) float64 { return m.uss }
	for r, rt := range runtimes {
		rssMin, rssMax := mem[r][0].rss, mem[r][0].rss
		for _, m := range mem[r] {
			rssMin, rssMax = min(rssMin, m.rss), max(rssMax, m.rss)
		}
		fmt.Fprintf(&t, "  %-24s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f\n", rt.name, rssMin, med(r, rss), rssMax,
			med(r, func(m memSample) float64 { return m.anon }), med(r, func(m memSample) float64 { return m.file }),
			med(r, pss), med(r, uss))
		b.ReportMetric(med(r, rss), "KiB-rss-"+rt.metric)
		b.ReportMetric(med(r, pss), "KiB-pss-"+rt.metric)
	}
	rssRatio := med(0, rss) / med(1, rss)
	pssRatio := med(0, pss) / med(1, pss)
	ussRatio := med(0, uss) / med(1, uss)
	nonRTRatio := med(2, rss) / med(1, rss)
	fmt.Fprintf(&t, "\n  %-32s %7.3f  goal ≤ %.2f  %s\n", "RSS rt FIFO / runc (median)", rssRatio, goalRSS, verdict(rssRatio, goalRSS))
	fmt.Fprintf(&t, "  %-32s %7.3f\n", "Pss rt FIFO / runc (median)", pssRatio)
	fmt.Fprintf(&t, "  %-32s %7.3f\n", "USS rt FIFO / runc (median)", ussRatio)
	fmt.Fprintf(&t, "  %-32s %7.3f\n", "RSS rt no request / runc", nonRTRatio)
	libsRSS, libsUSS := med(0, rss)/med(3, rss), med(0, uss)/med(3, uss)
	fmt.Fprintf(&t, "  %-32s %7.3f   USS %.3f  (the same containerd libraries: rtshim's own share)\n",
		"RSS rt FIFO / runc, rt's libs", libsRSS, libsUSS)
	b.ReportMetric(rssRatio, "rt/runc-rss-ratio")
	b.ReportMetric(pssRatio, "rt/runc-pss-ratio")
	b.ReportMetric(ussRatio, "rt/runc-uss-ratio")
	b.ReportMetric(nonRTRatio, "rt/runc-nonrt-rss-ratio")
	b.ReportMetric(libsRSS, "rt/runc-libs-rss-ratio")

	fmt.Fprintf(&t, "\n  binary sizes (all static and stripped; the containerd module each is built from or links):\n")
	var sizes []int64
	for _, bin := range []struct{ name, metric, path string }{
		{"rt shim", "rt", rtBinary},
		{"runc shim", "runc", runcBinary},
		{"runc shim, rt's libs", "runc-libs", libsBinary},
	} {
		st, err := os.Stat(bin.path)
		if err != nil {
			b.Fatal(err)
		}
		sizes = append(sizes, st.Size())
		fmt.Fprintf(&t, "  %-24s %10d bytes  %6.2f MiB  containerd %s  %s\n", bin.name, st.Size(),
			float64(st.Size())/(1<<20), containerdVersion(bin.path), repoRel(bin.path))
		b.ReportMetric(float64(st.Size()), "bytes-bin-"+bin.metric)
	}
	fmt.Fprintf(&t, "  %-24s %10.3f\n", "size rt / runc", float64(sizes[0])/float64(sizes[1]))
	if rssRatio > goalRSS {
		// Where the difference lives, for the MISS: in the containerd libraries the rt shim
		// links (the stock shim built from them against the control) or in rtshim's own code
		// (the rt shim against that stock shim); in the binary's pages (which the kernel maps
		// in 64 KiB around each fault, so nearly all of them) or the process's own memory.
		anon := func(m memSample) float64 { return m.anon }
		file := func(m memSample) float64 { return m.file }
		fmt.Fprintf(&t, "\n  MISS: rt FIFO − runc (medians): RssFile %+.0f KiB, RssAnon %+.0f KiB. Of it:\n",
			med(0, file)-med(1, file), med(0, anon)-med(1, anon))
		fmt.Fprintf(&t, "    containerd %s's libraries (runc shim on them − runc shim): RssFile %+.0f KiB, RssAnon %+.0f KiB, binary %+d KiB\n",
			containerdVersion(libsBinary), med(3, file)-med(1, file), med(3, anon)-med(1, anon), (sizes[2]-sizes[1])/1024)
		fmt.Fprintf(&t, "    rtshim's code (rt FIFO − runc shim on the same libraries): RssFile %+.0f KiB, RssAnon %+.0f KiB, binary %+d KiB\n",
			med(0, file)-med(3, file), med(0, anon)-med(3, anon), (sizes[0]-sizes[2])/1024)
		// rtshim's RssFile by mapping, against how much bigger its sections are: the kernel maps
		// a binary's pages in blocks around each fault (fault_around_bytes, 64 KiB by default),
		// so a block stays resident if the daemon touches any page of it.
		text := func(m memSample) float64 { return m.text }
		rodata := func(m memSample) float64 { return m.rodata }
		data := func(m memSample) float64 { return m.data }
		var size, grown [2]float64 // code, read-only data: the rt shim's; rt − runc on the same libraries
		for i, sec := range []struct{ want, not elf.SectionFlag }{{elf.SHF_EXECINSTR, 0}, {0, elf.SHF_EXECINSTR | elf.SHF_WRITE}} {
			rtK, err1 := sectionKiB(rtBinary, sec.want, sec.not)
			libsK, err2 := sectionKiB(libsBinary, sec.want, sec.not)
			if err := errors.Join(err1, err2); err != nil {
				b.Fatal(err)
			}
			size[i], grown[i] = rtK, rtK-libsK
		}
		fmt.Fprintf(&t, "      of its RssFile: code %+.0f KiB (its code sections %+.0f KiB), read-only data and pclntab %+.0f KiB (%+.0f KiB), data %+.0f KiB\n",
			med(0, text)-med(3, text), grown[0], med(0, rodata)-med(3, rodata), grown[1], med(0, data)-med(3, data))
		fmt.Fprintf(&t, "      the rt shim keeps %.0f%% of its code and %.0f%% of its read-only data resident: the kernel maps a binary's\n",
			100*med(0, text)/size[0], 100*med(0, rodata)/size[1])
		fmt.Fprintf(&t, "      pages in blocks around each fault, so its RssFile follows the size of the binary\n")
	}
	s := newSection("20-memory", "Shim memory and binary size")
	s.pre(t.String())
	s.Goal(report.Goal{Figure: "shim RSS, rt FIFO / runc (median)", Measured: fmt.Sprintf("%.3f", rssRatio),
		Goal: fmt.Sprintf("≤ %.2f", goalRSS), Verdict: verdict(rssRatio, goalRSS)})
	s.save(b)
	b.ReportMetric(0, "ns/op")
}

// libsShim is RTSHIM_BENCH_LIBS_SHIM: the stock runc shim built from the containerd module
// the rt shim links.
func libsShim(b *testing.B) string {
	b.Helper()
	p := os.Getenv("RTSHIM_BENCH_LIBS_SHIM")
	if _, err := os.Stat(p); err != nil || !filepath.IsAbs(p) {
		b.Fatalf("RTSHIM_BENCH_LIBS_SHIM=%q: want the absolute path of the runc shim built from the rt shim's containerd module (make bench builds it) (%v)", p, err)
	}
	return p
}

// shimPid returns the pid of container id's shim: the one process serving it, which must
// run binary.
func shimPid(d *harness.Daemon, id, binary string) (int, error) {
	found := d.ShimPIDs(id)
	if len(found) != 1 {
		return 0, fmt.Errorf("container %s: want one shim process, found %v", id, found)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", found[0]))
	if err != nil {
		return 0, fmt.Errorf("container %s: shim %d: %w", id, found[0], err)
	}
	if exe != binary {
		return 0, fmt.Errorf("container %s: shim %d runs %q, want %s", id, found[0], exe, binary)
	}
	return found[0], nil
}

// keepLog copies the daemon's log to RTSHIM_BENCH_LOG_DIR/<benchmark>.log
// when b ends, before the daemon's cleanup removes it.
func keepLog(b *testing.B, d *harness.Daemon) {
	dir := os.Getenv("RTSHIM_BENCH_LOG_DIR")
	if dir == "" {
		return
	}
	b.Cleanup(func() {
		log, err := os.ReadFile(d.LogPath())
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, b.Name()+".log"), log, 0o644)
		}
		if err != nil {
			b.Errorf("keep the containerd log: %v", err)
		}
	})
}

// memSample is a process's memory, in KiB.
type memSample struct {
	rss  float64 // VmRSS
	anon float64 // RssAnon: heap, stacks, the Go runtime's
	file float64 // RssFile: the binary's pages touched
	pss  float64 // Pss: shared pages split among their users
	uss  float64 // Private_Clean + Private_Dirty: its own pages only
	// The binary's resident pages by mapping: its code (r-xp: .text), its read-only data
	// (r--p: .rodata, .gopclntab, the type links) and its data (rw-p: .data, .noptrdata).
	text, rodata, data float64
}

func readMem(pid int) (memSample, error) {
	var m memSample
	var privClean, privDirty float64
	for _, f := range []struct {
		dst       *float64
		file, key string
	}{
		{&m.rss, "status", "VmRSS:"},
		{&m.anon, "status", "RssAnon:"},
		{&m.file, "status", "RssFile:"},
		{&m.pss, "smaps_rollup", "Pss:"},
		{&privClean, "smaps_rollup", "Private_Clean:"},
		{&privDirty, "smaps_rollup", "Private_Dirty:"},
	} {
		v, err := procKiB(pid, f.file, f.key)
		if err != nil {
			return m, err
		}
		*f.dst = v
	}
	m.uss = privClean + privDirty
	var err error
	m.text, m.rodata, m.data, err = binaryRss(pid)
	return m, err
}

// binaryRss sums the Rss of process pid's mappings of its own executable by permissions:
// code, read-only data, data (KiB).
func binaryRss(pid int) (text, rodata, data float64, err error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	var cur *float64 // the sum the current mapping's Rss goes to; nil: not the binary's
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		switch {
		case len(f) == 6 && strings.Contains(f[0], "-"): // a mapping's header: range perms offset dev inode path
			cur = nil
			if f[5] == exe {
				cur = map[string]*float64{"r-xp": &text, "r--p": &rodata, "rw-p": &data}[f[1]]
			}
		case cur != nil && len(f) == 3 && f[0] == "Rss:" && f[2] == "kB":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("smaps of %d: %w", pid, err)
			}
			*cur += v
		}
	}
	if text == 0 {
		return 0, 0, 0, fmt.Errorf("smaps of %d: no resident code of %s", pid, exe)
	}
	return text, rodata, data, nil
}

// sectionKiB sums the sizes of binary's ELF sections that are allocated and have all the flags
// in want and none of those in not (KiB): the size of what maps as code or read-only data.
func sectionKiB(binary string, want, not elf.SectionFlag) (float64, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Flags&want == want && s.Flags&not == 0 && s.Type != elf.SHT_NOBITS {
			n += s.Size
		}
	}
	return float64(n) / 1024, nil
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
	return moduleVersion(binary, "github.com/containerd/containerd/v2")
}

// moduleVersion is the version of module mod that binary was built from or links, from its
// Go build info; "?" when unknown.
func moduleVersion(binary, mod string) string {
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

// repoRel shows a path relative to the repository (the benchmarks run in bench/), so the
// committed report names no directory of the machine it ran on.
func repoRel(p string) string {
	if root, err := filepath.Abs(".."); err == nil {
		if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return filepath.Base(p)
}
