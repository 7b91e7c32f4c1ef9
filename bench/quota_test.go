//go:build linux

package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/internal/harness"
)

// The quota of BenchmarkQuota's containers: 50% of one CPU.
const (
	quotaUS  = 50000
	periodUS = 100000
)

// BenchmarkQuota runs the mixed application (/bin/mixedapp: an RT loop that waits each
// cycle on a SCHED_OTHER helper thread, next to SCHED_OTHER threads that use up CPU) in an rt
// shim container three ways: without a CFS quota; with a 50% quota that the shim lifts (the
// default, rtshim.io/cpu-quota=disable); with the same quota kept (rtshim.io/cpu-quota=keep),
// where the helper is throttled once the quota is spent and the RT loop waits for it.
func BenchmarkQuota(b *testing.B) {
	env.RequireRoot(b)
	requireBenchRootfs(b)
	secs := benchSeconds(b)
	burners := runtime.NumCPU()
	d := startContainerd(b)
	keepLog(b, d)
	loadBefore := loadAvg()

	runs := []struct {
		key, name string
		quota     bool
		keep      bool
	}{
		{"unthrottled", "no quota", false, false},
		{"exempt", "50% quota, exempted by the shim", true, false},
		{"kept", "50% quota kept (cpu-quota=keep)", true, true},
	}
	type result struct {
		mixedResult
		quota     string // cpu.cfs_quota_us while it ran
		throttled string // nr_throttled and throttled_time from cpu.stat at the end
	}
	results := make([]result, len(runs))
	for i, r := range runs {
		ann := map[string]string{}
		for k, v := range applyFIFO80ResetOnFork {
			ann[k] = v
		}
		o := harness.RunOpts{ID: "mixed-" + r.key, Annotations: ann,
			Args: []string{mixedAppPath, "-d", strconv.Itoa(secs), "-b", strconv.Itoa(burners)}}
		if r.quota {
			o.CPUQuota, o.CPUPeriod = quotaUS, periodUS
		}
		if r.keep {
			ann["rtshim.io/cpu-quota"] = "keep"
		}
		res := &results[i]
		out, code, err := runToEnd(b, d, o, time.Duration(secs)*time.Second,
			func() { res.quota = readTrim(d.CPUFile(o.ID, "cpu.cfs_quota_us")) },
			func() { res.throttled = throttling(d.CPUFile(o.ID, "cpu.stat")) })
		if err != nil || code != 0 {
			b.Fatalf("%s: exit %d, %v; output:\n%s", r.name, code, err, out)
		}
		if res.mixedResult, err = parseMixedApp(out); err != nil {
			b.Fatal(err)
		}
		if want := fmt.Sprintf("SCHED_FIFO %d", rtPriority); res.policy != want {
			b.Fatalf("%s: the RT loop ran %s, want %s", r.name, res.policy, want)
		}
	}
	loadAfter := loadAvg()

	s := newSection("40-quota", "Mixed application under a CFS quota")
	s.para("`/bin/mixedapp` (integration/testdata/mixedapp.c) for %d s in an rt shim container "+
		"(`rtshim.io/policy=SCHED_FIFO`, `priority=%d`, `reset-on-fork=true`, apply mode): its main thread is an RT "+
		"loop woken every 1 ms that wakes a SCHED_OTHER helper thread, which works 50 µs of CPU time, and waits for its "+
		"answer, as an RT thread waits on its application's logging, I/O or memory management; %d more SCHED_OTHER "+
		"threads spin (the rest of the application's work, which spends a quota). A cycle's latency runs from its "+
		"scheduled wake-up to the helper's answer; a cycle whose wake-up time had passed when the previous one ended "+
		"is missed. The quota is `ctr run --cpu-quota %d --cpu-period %d` (50%% of one CPU); *throttled* is the "+
		"container cgroup's `cpu.stat` at the end: periods throttled and `throttled_time` (summed over CPUs). Load "+
		"average (1 min) before and after: %s → %s.", secs, rtPriority, burners, quotaUS, periodUS, loadBefore, loadAfter)

	t := newTable("run", "cfs_quota_us", "RT loop", "cycles", "missed", "p50 µs", "p99 µs", "max µs", "throttled")
	h := plot.Histogram{Title: "Mixed application: cycle latency (RT loop waiting on a SCHED_OTHER helper)",
		XLabel: "cycle latency", XFormat: plot.Micros}
	bars := plot.Bars{Title: "Mixed application: p99 and worst cycle", YLabel: "latency", LogY: true, YFormat: plot.Micros,
		Series: []plot.BarSeries{{Name: "p99"}, {Name: "max"}}}
	for i, r := range runs {
		res := results[i]
		t.add(r.name, res.quota, res.policy, strconv.FormatInt(res.lat.n, 10), strconv.FormatInt(res.missed, 10),
			us(res.lat.percentile(50)), us(res.lat.percentile(99)), us(float64(res.lat.max)), res.throttled)
		h.Series = append(h.Series, res.lat.series(r.name))
		bars.Groups = append(bars.Groups, strings.Replace(r.name, ", ", ",\n", 1))
		bars.Series[0].Values = append(bars.Series[0].Values, res.lat.percentile(99))
		bars.Series[1].Values = append(bars.Series[1].Values, float64(res.lat.max))
		b.ReportMetric(res.lat.percentile(99), "us-p99-"+r.key)
		b.ReportMetric(float64(res.lat.max), "us-max-"+r.key)
	}
	fmt.Printf("\nMixed application, %d s, %d burner threads, quota %d/%d; load average %s -> %s\n",
		secs, burners, quotaUS, periodUS, loadBefore, loadAfter)
	s.table(t)
	s.plot(b, "histogram", "mixed application cycle latency histogram", h.WriteSVG)
	s.plot(b, "bars", "mixed application p99 and worst case", bars.WriteSVG)

	free, exempt, kept := results[0].lat, results[1].lat, results[2].lat
	s.goal("mixed app worst case, exempted / unthrottled", fmt.Sprintf("%s (%s / %s µs)", ratio(float64(exempt.max)/float64(free.max)),
		us(float64(exempt.max)), us(float64(free.max))), fmt.Sprintf("≤ %.0f", goalQuota), float64(exempt.max) <= goalQuota*float64(free.max))
	s.Printf("For comparison, the kept quota: worst case %s µs (%s × unthrottled), p99 %s µs.\n\n", us(float64(kept.max)),
		ratio(float64(kept.max)/float64(free.max)), us(kept.percentile(99)))
	s.save(b)
	b.ReportMetric(0, "ns/op")
}

// readTrim reads a small file; "?" if it cannot.
func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// throttling summarises a cgroup v1 cpu.stat: "12 periods, 900 ms".
func throttling(path string) string {
	f := map[string]string{}
	for line := range strings.Lines(readTrim(path)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			f[k] = v
		}
	}
	n, ns := f["nr_throttled"], f["throttled_time"]
	if n == "" {
		return "?"
	}
	t, _ := strconv.ParseInt(ns, 10, 64)
	return fmt.Sprintf("%s periods, %d ms", n, t/1e6)
}
