//go:build linux

package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/internal/harness"
)

// scaleBudgetUS is the RT budget of each of BenchmarkScale's containers: small, so that 400
// of them (800000 µs of 1000000) fit in the host's 950000 (the bench config's
// limits.min_rt_runtime_us is 1).
const scaleBudgetUS = 2000

// Goals of BenchmarkScale: the rt shim's create p99 and delete p50 and p99 over the stock
// runc shim's; its grant and release times (median of the probes) with all containers
// running over the same with scaleSmall running.
const (
	goalScaleCreate = 1.1
	goalScaleDelete = 1.05
	goalScaleFlat   = 1.2
	scaleSmall      = 10
)

// pool runs f(i) for i in [0, n) on width goroutines.
func pool(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// scalePhase is one runtime's containers of BenchmarkScale.
type scalePhase struct {
	create, remove []float64 // ms, of the containers that ran
	admitted       int
	refused        []string // budget refusals
	failed         []string // other failures
}

// BenchmarkScale creates RTSHIM_BENCH_SCALE (default 400) SCHED_FIFO containers, each asking
// for an RT budget of 2000 µs, through the rt shim and as many through the stock runc shim
// (which ignores the request), alternating, RTSHIM_BENCH_CONCURRENCY (default 10) at a time,
// and deletes them as concurrently. Every container must be admitted while the
// host's budget allows, each refusal must be for lack of budget, and after the deletions
// the cpu cgroup tree and rtshim's claims must be as before. With scaleSmall containers of
// each runtime running, and again with all, it creates and deletes scaleProbes rt shim
// containers one by one (probeAt): their grant and release times must not grow with the
// containers that run.
func BenchmarkScale(b *testing.B) {
	env.RequireRoot(b)
	harness.RequireRTGroupSched(b)
	n := envInt(b, "RTSHIM_BENCH_SCALE", 400)
	width := envInt(b, "RTSHIM_BENCH_CONCURRENCY", 10)
	d := startContainerd(b)
	keepLog(b, d)
	ann := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": strconv.Itoa(rtPriority),
		"rtshim.io/rt-runtime-us": strconv.Itoa(scaleBudgetUS)}
	before := harness.SnapshotCPUTree(b)
	loadBefore := loadAvg()

	// Warm-up: the page cache, both shim binaries, the daemon's first containers.
	for i := range 2 {
		for _, rt := range []string{harness.RTRuntime, harness.StockRuntime} {
			d.MustRun(b, harness.RunOpts{ID: fmt.Sprintf("warmup-%d-%s", i, strings.Split(rt, ".")[2]), Runtime: rt,
				Annotations: ann, Args: []string{"/bin/true"}})

		}
	}

	// What fits: the root's budget less what other cgroups hold (other test runs included).
	avail := harness.RootRTAvailable(b)
	fit := int(avail / scaleBudgetUS)
	// Container j of 2n is runtime j%2's number j/2: the two runtimes alternate in one pool,
	// so both see the same host while it fills up (and whatever else runs on it).
	runtimes := []struct{ tag, runtime, policy string }{{"rt", harness.RTRuntime, "SCHED_FIFO"}, {"runc", harness.StockRuntime, "SCHED_OTHER"}}
	phases := make([]scalePhase, 2)
	id := func(j int) string { return fmt.Sprintf("%s-%03d", runtimes[j%2].tag, j/2) }
	ran := make([]bool, 2*n)
	var mu sync.Mutex
	create := func(j int) {
		start := time.Now()
		_, _, err := d.Run(b, harness.RunOpts{ID: id(j), Runtime: runtimes[j%2].runtime, Annotations: ann, Detach: true,
			Args: []string{"/bin/schedinfo", "-sleep", "3600"}})
		elapsed := ms(time.Since(start))
		mu.Lock()
		defer mu.Unlock()
		p := &phases[j%2]
		switch {
		case err == nil:
			ran[j] = true
			p.admitted++
			p.create = append(p.create, elapsed)
		case j%2 == 0 && strings.Contains(err.Error(), "no RT budget for container"):
			p.refused = append(p.refused, id(j))
		default:
			p.failed = append(p.failed, fmt.Sprintf("%s: %v", id(j), err))
		}
	}
	// The first scaleSmall of each runtime, probes; the rest, probes again.
	small := min(scaleSmall, n)
	pool(2*small, width, create)
	probes := []probeTimes{probeAt(b, d, "small", phases[0].admitted, ann)}
	pool(2*(n-small), width, func(j int) { create(2*small + j) })
	probes = append(probes, probeAt(b, d, "all", phases[0].admitted, ann))
	nsBudget := harness.ReadInt(b, harness.CPUV1(d.CgroupPath(""))+"/cpu.rt_runtime_us")
	for j := range 2 * n {
		if !ran[j] {
			d.Ctr(b, "containers", "delete", id(j))
			continue
		}
		d.WaitForOutput(b, id(j), "policy="+runtimes[j%2].policy+" ")
		if j%2 == 0 {
			if got := harness.ReadInt(b, d.CPUFile(id(j), "cpu.rt_runtime_us")); got != scaleBudgetUS {
				phases[0].failed = append(phases[0].failed, fmt.Sprintf("%s: cpu.rt_runtime_us = %d, want %d", id(j), got, scaleBudgetUS))
			}
		}
	}
	pool(2*n, width, func(j int) {
		if !ran[j] {
			return
		}
		start := time.Now()
		err := d.RemoveErr(id(j))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			phases[j%2].failed = append(phases[j%2].failed, err.Error())
			return
		}
		phases[j%2].remove = append(phases[j%2].remove, ms(time.Since(start)))
	})
	rt, runc := phases[0], phases[1]
	daemonLog, err := os.ReadFile(d.LogPath())
	if err != nil {
		b.Fatal(err)
	}
	// containerd's cleanup after each shim's exit, per runtime (see shimCleanup).
	cleanup := func(tag string) []float64 {
		return shimCleanup(string(daemonLog), func(id string) bool {
			n, ok := strings.CutPrefix(id, tag+"-")
			_, err := strconv.Atoi(n)
			return ok && err == nil
		})
	}
	rtCleanup, runcCleanup := cleanup("rt"), cleanup("runc")
	residue := d.Residue(b, before)
	loadAfter := loadAvg()
	for _, f := range append(rt.failed, runc.failed...) {
		b.Error(f)
	}
	for _, r := range residue {
		b.Errorf("residue: %s", r)
	}

	s := newSection("50-scale", "Scale: many RT containers")
	s.para("%d containers through the rt shim and %d through the stock runc shim (the control, which ignores the "+
		"annotations), alternating, %d at a time (`ctr run --detach` of `/bin/schedinfo -sleep 3600`), each with "+
		"`rtshim.io/policy=SCHED_FIFO`, `priority=%d`, `rt-runtime-us=%d`, until all run at once; then all deleted, "+
		"alternating, %d at a time (`ctr tasks kill`, `tasks delete`, `containers delete`). Create is the wall time "+
		"of `ctr run --detach` (create and start). Before, the host's root cpu cgroup had %d µs of RT budget free "+
		"for new groups (its own less what other cgroups held), room for %d such containers; with all running, the "+
		"containers' parent cgroup held %d µs. Residue: the cpu cgroup tree (every `cpu.rt_runtime_us` and "+
		"`cpu.cfs_quota_us`) and rtshim's claims after the deletions, against before. Load average (1 min) before "+
		"and after: %s → %s.",
		n, n, width, rtPriority, scaleBudgetUS, width, avail, fit, nsBudget, loadBefore, loadAfter)
	t := newTable("runtime", "admitted", "refused (budget)", "create p50 ms", "create p99 ms", "create max ms",
		"delete p50 ms", "delete p99 ms")
	for _, r := range []struct {
		name string
		p    scalePhase
	}{{"rt shim", rt}, {"runc shim", runc}} {
		t.add(r.name, strconv.Itoa(r.p.admitted), strconv.Itoa(len(r.p.refused)),
			fmt.Sprintf("%.0f", percentile(r.p.create, 50)), fmt.Sprintf("%.0f", percentile(r.p.create, 99)),
			fmt.Sprintf("%.0f", percentile(r.p.create, 100)), fmt.Sprintf("%.0f", percentile(r.p.remove, 50)),
			fmt.Sprintf("%.0f", percentile(r.p.remove, 99)))
	}
	fmt.Printf("\nScale: %d containers per runtime, alternating, %d at a time, %d µs each; %d µs free (room for %d), %d µs held by all; load average %s -> %s\n",
		n, width, scaleBudgetUS, avail, fit, nsBudget, loadBefore, loadAfter)
	s.table(t)
	s.para("Grant and release: %d rt shim containers created and deleted one after the other (`ctr run --detach`, then "+
		"the same deletion), first with %d containers of each runtime running, then with all; the times are the shim's "+
		"own (`took=` of its \"granted real-time resources\" and \"released real-time resources\" log lines: from "+
		"before it takes the host-wide lock to after it let go, the periodic sweep for crashed shims' leftovers included), "+
		"and of that the kernel's RT writes (`rt_write_time=`, `rt_writes=` of the same lines: each write of a "+
		"`cpu.rt_runtime_us` or `cpu.rt_period_us` makes the kernel check every task group on the host).",
		scaleProbes, small)
	pt := newTable("rt shim containers running", "grant p50 ms", "grant max ms", "its RT writes p50 ms (n)",
		"release p50 ms", "release max ms", "its RT writes p50 ms (n)")
	for _, p := range probes {
		pt.add(strconv.Itoa(p.running), fmt.Sprintf("%.2f", median(p.grant.took)), fmt.Sprintf("%.2f", percentile(p.grant.took, 100)),
			fmt.Sprintf("%.2f (%.0f)", median(p.grant.rt), median(p.grant.writes)),
			fmt.Sprintf("%.2f", median(p.release.took)), fmt.Sprintf("%.2f", percentile(p.release.took, 100)),
			fmt.Sprintf("%.2f (%.0f)", median(p.release.rt), median(p.release.writes)))
	}
	s.table(pt)

	bars := plot.Bars{Title: fmt.Sprintf("Create (ctr run --detach) of %d containers, %d at a time", n, width),
		YLabel: "milliseconds", Groups: []string{"p50", "p99", "max"}}
	for _, r := range []struct {
		name string
		p    scalePhase
	}{{"rt shim", rt}, {"runc shim", runc}} {
		bars.Series = append(bars.Series, plot.BarSeries{Name: r.name, Values: []float64{
			percentile(r.p.create, 50), percentile(r.p.create, 99), percentile(r.p.create, 100)}})
	}
	s.plot(b, "create", "create time, rt shim and runc shim", bars.WriteSVG)

	want := min(n, fit)
	s.goal(fmt.Sprintf("scale: RT containers admitted (room for %d)", fit), fmt.Sprintf("%d of %d", rt.admitted, n),
		fmt.Sprintf("%d: all that fit", want), rt.admitted == want && len(rt.failed) == 0)
	p99rt, p99runc := percentile(rt.create, 99), percentile(runc.create, 99)
	s.goal("scale: create p99, rt shim / runc shim", fmt.Sprintf("%s (%.0f / %.0f ms)", ratio(p99rt/p99runc), p99rt, p99runc),
		fmt.Sprintf("≤ %.2f", goalScaleCreate), p99rt <= goalScaleCreate*p99runc)
	if p99rt > goalScaleCreate*p99runc {
		// p99 of a few hundred creates is their few slowest: how far the run's own data lets it move.
		ciLo, ciHi := quantileRatioCI(rt.create, runc.create, 99)
		p50rt, p50runc := percentile(rt.create, 50), percentile(runc.create, 50)
		s.para("MISS, create p99: rt shim %.0f ms, runc shim %.0f ms (%+.0f ms); p50 %.0f and %.0f ms (%s). Of an rt shim "+
			"create, rtshim's grant took a median %.2f ms with %d running (the probes above). The creates run %d at a time "+
			"on a host that does other work: over these %d and %d creates the p99 ratio's 95%% bootstrap interval is %s–%s.",
			p99rt, p99runc, p99rt-p99runc, p50rt, p50runc, ratio(p50rt/p50runc), median(probes[1].grant.took),
			probes[1].running, width, len(rt.create), len(runc.create), ratio(ciLo), ratio(ciHi))
	}
	for _, q := range []float64{50, 99} {
		r, c := percentile(rt.remove, q), percentile(runc.remove, q)
		s.goal(fmt.Sprintf("scale: delete p%.0f, rt shim / runc shim", q), fmt.Sprintf("%s (%.0f / %.0f ms)", ratio(r/c), r, c),
			fmt.Sprintf("≤ %.2f", goalScaleDelete), r <= goalScaleDelete*c)
		if r > goalScaleDelete*c {
			ciLo, ciHi := quantileRatioCI(rt.remove, runc.remove, q)
			// What of the difference is the rt shim's own work, as far as it can be timed.
			s.para("MISS, delete p%.0f: rt shim %.0f ms, runc shim %.0f ms (%+.0f ms). What an rt shim delete does "+
				"beyond the stock one: the release of the budget (a median %.2f ms with %d running, the probes above); its "+
				"RT threads set to SCHED_OTHER before the kill and its cgroup's budget set to 0 before `runc delete` (one "+
				"more RT write, a walk of every task group by the kernel); and, in containerd's cleanup after the shim's "+
				"exit, which a delete waits for, a run of the larger shim binary's `delete`: that cleanup took p50 %.0f / "+
				"p99 %.0f ms after the rt shim and %.0f / %.0f ms after the runc shim, %d containers' cleanups each (the "+
				"stock cleanup, `runc delete --force` and the rootfs unmount, is most of it in both). The deletes run %d at "+
				"a time on a host that does other work: over these %d and %d deletes the ratio's 95%% bootstrap interval "+
				"is %s–%s.",
				q, r, c, r-c, median(probes[1].release.took), probes[1].running, percentile(rtCleanup, 50),
				percentile(rtCleanup, 99), percentile(runcCleanup, 50), percentile(runcCleanup, 99), len(rtCleanup), width,
				len(rt.remove), len(runc.remove), ratio(ciLo), ratio(ciHi))
		}
	}
	lo, hi := probes[0], probes[1]
	for _, k := range []struct {
		name    string
		at10, n shimOps
	}{{"grant", lo.grant, hi.grant}, {"release", lo.release, hi.release}} {
		a, z := median(k.at10.took), median(k.n.took)
		pass := z <= goalScaleFlat*a
		s.goal(fmt.Sprintf("scale: %s time (median, lock wait included), %d running / %d running", k.name, hi.running, lo.running),
			fmt.Sprintf("%s (%.2f / %.2f ms)", ratio(z/a), z, a), fmt.Sprintf("≤ %.1f", goalScaleFlat), pass)
		if !pass {
			s.para("%s", flatMiss(k.name, k.at10, k.n, lo.running, hi.running))
		}
	}
	left := "none"
	if len(residue) > 0 {
		left = strconv.Itoa(len(residue)) + " differences"
	}
	s.goal("scale: residue after deletion (cpu cgroup tree, rtshim claims)", left, "none", len(residue) == 0)
	s.save(b)
	b.ReportMetric(p99rt/p99runc, "rt/runc-create-p99-ratio")
	b.ReportMetric(float64(rt.admitted), "admitted")
	b.ReportMetric(median(hi.grant.took)/median(lo.grant.took), "grant-p50-ratio")
	b.ReportMetric(median(hi.release.took)/median(lo.release.took), "release-p50-ratio")
	b.ReportMetric(0, "ns/op")
}

// flatMiss explains a missed grant or release flatness goal: the spread at each size (other
// work on the host moves single probes by milliseconds), and how much of the growth was the
// kernel's RT writes, whose check walks every task group on the host, and how much the rest
// of rtshim's work. When the writes alone grow by more than the goal allows, no change to the
// rest can meet it: it says so.
func flatMiss(name string, at10, atN shimOps, small, n int) string {
	a := median(at10.took)
	ka, kn := median(at10.rt), median(atN.rt)
	ra, rn := median(at10.rest()), median(atN.rest())
	allowed := (goalScaleFlat - 1) * a
	writes := fmt.Sprintf("%.0f RT write", median(atN.writes))
	if median(atN.writes) != 1 {
		writes += "s"
	}
	why := fmt.Sprintf("the kernel's writes grew by %.2f ms, within the %.2f ms by which the goal lets %.2f ms grow (× %.1f): "+
		"the rest of the growth is rtshim's or the host's", kn-ka, allowed, a, goalScaleFlat)
	if kn-ka > allowed {
		why = fmt.Sprintf("the kernel's writes alone grew by %.2f ms, more than the %.2f ms by which the goal lets %.2f ms grow "+
			"(× %.1f): with the %s a %s needs (the kernel's check of each walks every task group on the host, "+
			"tg_rt_schedulable), the goal cannot be met on this kernel with this many cgroups, whatever rtshim does "+
			"around them", kn-ka, allowed, a, goalScaleFlat, writes, name)
	}
	return fmt.Sprintf("MISS, %s: the %d probes took %.2f–%.2f ms (quartiles %.2f–%.2f) with %d running and %.2f–%.2f ms "+
		"(quartiles %.2f–%.2f) with %d. Their RT writes took a median %.2f ms with %d running and %.2f ms with %d; the "+
		"rest (the lock, rtshim's records, cgroup reads and directories) %.2f ms and %.2f ms (× %s); %s.",
		name, len(atN.took), percentile(at10.took, 0), percentile(at10.took, 100), percentile(at10.took, 25), percentile(at10.took, 75),
		small, percentile(atN.took, 0), percentile(atN.took, 100), percentile(atN.took, 25), percentile(atN.took, 75), n,
		ka, small, kn, n, ra, rn, ratio(rn/ra), why)
}
