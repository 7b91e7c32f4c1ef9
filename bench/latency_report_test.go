//go:build linux

package bench

// BenchmarkLatency's part of the report: its tables, figures and goals.

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
)

// latencyReport is what BenchmarkLatency measured.
type latencyReport struct {
	rounds, secs           int // rounds, seconds of one measurement
	scenarios              []latencyScenario
	results                map[string]pooledRun // scenario/mode
	loadBefore, loadAfter  string
	took                   time.Duration
	probeApply, probeOther string
}

// toolVersion is the version a rootfs program prints first ("cyclictest V 2.40" → "2.40"),
// or "?".
func toolVersion(path, flag, prefix string) string {
	out, _ := exec.Command(filepath.Join(env.Rootfs, path), flag).CombinedOutput()
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return strings.Fields(v + " ?")[0]
		}
	}
	return "?"
}

func reportLatency(b *testing.B, r latencyReport) {
	b.Helper()
	version := toolVersion(cyclictestPath, "--help", "cyclictest V ")
	s := newSection("30-latency", "Wake-up latency under load (cyclictest)")
	s.para("Debian's `cyclictest` (rt-tests %s): one measuring thread woken every 1 ms (`-i 1000`), "+
		"1 µs histogram buckets, %d rounds of %d s per row (below). The same process tree runs on the host under `chrt -R -f %d` in the root cpu cgroup "+
		"(the physical limit here: this kernel is not PREEMPT_RT), in a container of the rt shim "+
		"(`rtshim.io/policy=SCHED_FIFO`, `priority=%d`, `mode=grant`: the container gets CAP_SYS_NICE and an RT budget, "+
		"and `cyclictest -p %d` makes only its measuring thread SCHED_FIFO), and in a container of the stock runc shim "+
		"with the same annotations. There `cyclictest -p %d` is refused (the container's cgroup has no RT budget), and "+
		"cyclictest cannot measure at SCHED_OTHER either: it will not start unless it can switch to SCHED_FIFO (probe, "+
		"`cyclictest --policy=other` in a runc container: %s). So `/bin/wakelat` (integration/testdata/wakelat.c), "+
		"cyclictest's measuring loop (absolute `clock_nanosleep`, CLOCK_MONOTONIC, missed periods skipped), measures the "+
		"runc container at SCHED_OTHER; in the first three scenarios a last row runs wakelat on the host as cyclictest "+
		"runs there, to show the two agree. Both skip a period whose wake-up time passed before the previous wake-up was "+
		"measured: fewer samples than periods mean wake-ups later than a whole period.",
		version, r.rounds, r.secs, rtPriority, rtPriority, rtPriority, rtPriority, r.probeOther)
	var about strings.Builder
	for _, sc := range r.scenarios {
		fmt.Fprintf(&about, "- *%s*: %s\n", sc.name, sc.about)
	}
	s.para("How the rows are compared: this host's own tail latency drifts between runs by more than a goal's margin "+
		"(other work on the host, the VM's own host), so the rows do not measure one long run each, one after the other. "+
		"Every row of a scenario measures %d rounds of %d s, in an ABBA order (round 1 in the table's order, round 2 in "+
		"reverse, and so on: each pair of neighbouring rows measures back to back), under one load that runs through "+
		"them all. The goals read the *median of rounds*: each round's own p99 (p99.9), the median over the %d rounds; "+
		"*rounds* is the lowest and the highest of them, for the host as for the containers: how much the host drifted "+
		"while this ran. Samples, p50, max and the histograms pool the rounds (%d s at 1 kHz). The median rather than the "+
		"pooled samples' percentile: the noise here comes in bursts shorter than a scenario, and a round that a burst "+
		"hit was seen at 4 to 30 times the p99.9 of its row's other rounds; pooled, its slow wake-ups make the whole tail of its row, "+
		"while the median sets aside up to %d rounds of each row, and a burst long enough to cover most rounds of one row "+
		"covers its neighbours in the order too. The price: a round's p99.9 rests on its %d slowest wake-ups. "+
		"In a container the measurer starts %v after the container (`sh -c 'sleep ...; exec <measurer>'`) and the "+
		"harness does not look for its end before its window is over: the window holds the running container, not the "+
		"end of its start (containerd, the shim and runc finishing it; the lifecycle benchmarks time that) nor a ctr "+
		"process. On the host nothing of the harness runs once chrt has exec'd the measurer.",
		r.rounds, r.secs, r.rounds, r.rounds*r.secs, (r.rounds-1)/2, r.secs, measureDelay)
	s.para("Scenarios (stress-ng %s). A neighbour's load runs in a plain container of the stock runc shim (SCHED_OTHER), "+
		"started %v before the first round and running through every round of every row, the host's included: each row "+
		"wakes up next to the very same processes, and no restart of the load (which was seen to change the next "+
		"measurement) falls between rounds. Each stressor has one worker per CPU, unpinned like "+
		"cyclictest: wherever the measuring thread wakes up, a stressor shares its CPU, and the load is the same on "+
		"both sides. `--switch` has one pair of processes per two CPUs: with a pair per CPU in the neighbour "+
		"container, the pairs' cgroup was seen to starve the root cgroup's SCHED_OTHER tasks (`ctr --version` "+
		"took 1.7 s instead of 0.04 s, with other work on the host), containerd and the shims among them, and each "+
		"container's lifecycle took half a minute.\n\n%s", toolVersion(stressNGPath, "--version", "stress-ng, version "), loadSettle, strings.TrimRight(about.String(), "\n"))
	s.para("Apply mode with `rtshim.io/reset-on-fork=true` (the container starts SCHED_FIFO, its children and "+
		"threads SCHED_OTHER) cannot run cyclictest: cyclictest first checks that it may switch to SCHED_FIFO, which "+
		"clears reset-on-fork and so needs CAP_SYS_NICE, and its measuring thread is a new thread, started "+
		"SCHED_OTHER. Probe, that container running `cyclictest -p %d`: %s. Programs that set their own threads' "+
		"policy want grant mode; apply mode with reset-on-fork suits a program whose main thread is its RT thread "+
		"(the mixed application below).", rtPriority, r.probeApply)
	s.para("Load average (1 min) before and after: %s → %s; the benchmark took %v. Other work on the host shows up in every figure.",
		r.loadBefore, r.loadAfter, r.took.Round(time.Second))
	fmt.Printf("\nWake-up latency: cyclictest %s -i 1000, %d rounds of -D %d; load average %s -> %s; took %v\n", version, r.rounds, r.secs, r.loadBefore, r.loadAfter, r.took.Round(time.Second))
	fmt.Printf("probe, apply mode with reset-on-fork, cyclictest -p %d: %s\n", rtPriority, r.probeApply)
	fmt.Printf("probe, runc shim, cyclictest --policy=other: %s\n", r.probeOther)

	t := newTable(append(append([]string{"scenario", "runs on", "tool", "measuring thread"}, latencyHead...), "note")...)
	for _, sc := range r.scenarios {
		for _, m := range modesOf(sc) {
			run := r.results[sc.key+"/"+m.key]
			t.add(append(append([]string{sc.name, m.name, run.tool, run.policy}, latencyCells(run)...), run.note)...)
			b.ReportMetric(run.typical(99), "us-p99-"+sc.key+"-"+m.key)
			printRounds(sc.key+"/"+m.key, run)
		}
	}
	s.table(t)

	// The figures: p99 and p99.9 of every scenario, and each scenario's histogram.
	var plotted []latencyMode
	for _, m := range latencyModes {
		if m.short != "" {
			plotted = append(plotted, m)
		}
	}
	bars := map[float64]*plot.Bars{}
	for _, p := range []float64{99, 99.9} {
		bars[p] = &plot.Bars{Title: fmt.Sprintf("Wake-up latency p%v (1 kHz, median of %d rounds)", p, r.rounds), YLabel: fmt.Sprintf("p%v latency", p),
			LogY: true, YFormat: plot.Micros}
		for _, m := range plotted {
			bars[p].Series = append(bars[p].Series, plot.BarSeries{Name: m.legend(r.results["own/"+m.key].latencyRun)})
		}
	}
	for _, sc := range r.scenarios {
		h := plot.Histogram{Title: "Wake-up latency, " + sc.name + fmt.Sprintf(" (%d rounds pooled)", r.rounds), XLabel: "latency", XFormat: plot.Micros}
		for i, m := range plotted {
			run := r.results[sc.key+"/"+m.key]
			for p, bs := range bars {
				bs.Series[i].Values = append(bs.Series[i].Values, run.typical(p))
			}
			h.Series = append(h.Series, run.lat.series(m.legend(run.latencyRun)))
		}
		for _, bs := range bars {
			bs.Groups = append(bs.Groups, sc.label)
		}
		s.plot(b, sc.key, "latency histogram, "+sc.name, h.WriteSVG)
	}
	s.plot(b, "p99", "p99 latency by scenario", bars[99].WriteSVG)
	s.plot(b, "p99.9", "p99.9 latency by scenario", bars[99.9].WriteSVG)

	// The stock runc container against the rt container: a goal only with the container's own
	// tree busy; next to a neighbour, a figure.
	ratios := newTable("scenario", "runc shim p99 µs", "rt shim p99 µs", "runc / rt")
	for _, sc := range r.scenarios {
		runc, rt := r.results[sc.key+"/runc"].typical(99), r.results[sc.key+"/rt"].typical(99)
		ratios.add(sc.name, us(runc), us(rt), ratio(runc/rt))
	}
	s.para("The stock runc container (SCHED_OTHER) against the rt container. Only with its own process tree busy is "+
		"this a goal (≥ %d): there the runc container's measurer queues behind its own busy loops. Next to a loaded "+
		"neighbour the ratio is reported without a verdict: this kernel's fair scheduler (EEVDF) does not starve a "+
		"mostly sleeping SCHED_OTHER task that a neighbour competes with, so the figure measures the scheduler, not "+
		"the runtime.", goalVsRunc)
	s.table(ratios)

	var misses []string
	for _, sc := range r.scenarios {
		host, rt := r.results[sc.key+"/host"], r.results[sc.key+"/rt"]
		for _, p := range []float64{99, 99.9} {
			if miss := hostGoal(s, sc.name+": rt shim", p, host, rt); miss != "" {
				misses = append(misses, miss)
			}
		}
		if sc.own {
			runc, rt := r.results[sc.key+"/runc"].typical(99), rt.typical(99)
			s.goal(sc.name+": runc shim p99 / rt shim p99", ratio(runc/rt)+" ("+us(runc)+" µs)",
				fmt.Sprintf("≥ %d", goalVsRunc), runc/rt >= goalVsRunc)
			if !(runc/rt >= goalVsRunc) {
				misses = append(misses, fmt.Sprintf("%s, runc / rt: the rt container's p99 is %s µs, the host's %s µs",
					sc.name, us(rt), us(host.typical(99))))
			}
		}
	}
	if len(misses) > 0 {
		s.para("Missed goals (%d), with the wake-ups beyond each limit: %s. A round's p99.9 of %d s at 1 kHz rests on its %d "+
			"slowest wake-ups, its p99 on its %d slowest, so a few late wake-ups move it: from other work on the host "+
			"(load average %s → %s while this ran), or from this kernel (not PREEMPT_RT: interrupts and non-preemptible "+
			"kernel sections delay even a SCHED_FIFO thread). Where the host's own count beyond the limit is of the same "+
			"order, or the rows' ranges over the rounds overlap, the rows differ by such noise, not by the container. The "+
			"rounds above the host's of the same round (measured back to back with it) tell the two apart: a container "+
			"slower by what its runtime costs is above in every round, host noise puts it above in about half.",
			len(misses), strings.Join(misses, "; "), r.secs, r.secs, 10*r.secs, r.loadBefore, r.loadAfter)
	}
	s.save(b)
	b.ReportMetric(0, "ns/op")
}
