//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/bench/plot"
)

// histMaxUS is the range of cyclictest's histogram (-h): latencies above it are counted as
// overflows, of which only the largest is known.
const histMaxUS = 1000000

// latencies is a latency distribution in whole microseconds, as cyclictest's histogram and
// /bin/mixedapp report it.
type latencies struct {
	counts   map[int64]int64 // µs → samples within the histogram's range
	n        int64           // samples, overflows included
	overflow int64           // samples above histMaxUS
	max      int64           // µs, exact
}

// percentile is the nearest-rank p-th percentile in µs: the smallest latency with at least
// p% of the samples at or below it. +Inf when it is among the overflows, NaN without samples.
func (l latencies) percentile(p float64) float64 {
	if l.n == 0 {
		return math.NaN()
	}
	rank := max(int64(math.Ceil(p/100*float64(l.n))), 1)
	var seen int64
	for _, v := range slices.Sorted(maps.Keys(l.counts)) {
		if seen += l.counts[v]; seen >= rank {
			return float64(v)
		}
	}
	return math.Inf(1)
}

// above is the number of samples later than limit µs, overflows included.
func (l latencies) above(limit float64) int64 {
	n := l.overflow
	for v, c := range l.counts {
		if float64(v) > limit {
			n += c
		}
	}
	return n
}

// series is l for a histogram plot; overflows are drawn at the maximum.
func (l latencies) series(name string) plot.Series {
	s := plot.Series{Name: name, Counts: map[float64]float64{}}
	for v, c := range l.counts {
		s.Counts[float64(v)] += float64(c)
	}
	if l.overflow > 0 {
		s.Counts[float64(l.max)] += float64(l.overflow)
	}
	return s
}

// cyclictestJSON is the part of cyclictest's --json output that the benchmarks read.
type cyclictestJSON struct {
	ReturnCode int `json:"return_code"`
	NumThreads int `json:"num_threads"`
	Thread     map[string]struct {
		Histogram map[string]int64 `json:"histogram"`
		Cycles    int64            `json:"cycles"`
		Min       int64            `json:"min"`
		Max       int64            `json:"max"`
	} `json:"thread"`
}

// parseCyclictest reads the latencies of one measuring thread from the output of
// `cyclictest -h <histMaxUS> --histfile=/dev/null --json=/dev/stdout`: the JSON object is
// the output's last lines, after any warnings.
func parseCyclictest(out string) (latencies, error) {
	start := strings.Index(out, "\n{")
	if strings.HasPrefix(out, "{") {
		start = -1
	} else if start < 0 {
		return latencies{}, fmt.Errorf("no JSON object in cyclictest's output:\n%s", out)
	}
	end := strings.LastIndex(out, "}")
	if end < start+1 {
		return latencies{}, fmt.Errorf("no end of the JSON object in cyclictest's output:\n%s", out)
	}
	var j cyclictestJSON
	if err := json.Unmarshal([]byte(out[start+1:end+1]), &j); err != nil {
		return latencies{}, fmt.Errorf("cyclictest's JSON: %w", err)
	}
	if j.ReturnCode != 0 || len(j.Thread) != 1 {
		return latencies{}, fmt.Errorf("cyclictest: return code %d, %d threads; want 0 and one", j.ReturnCode, len(j.Thread))
	}
	l := latencies{counts: map[int64]int64{}}
	for _, th := range j.Thread {
		var inRange int64
		for k, c := range th.Histogram {
			v, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return latencies{}, fmt.Errorf("cyclictest's histogram: bucket %q", k)
			}
			l.counts[v] += c
			inRange += c
		}
		l.n, l.max = th.Cycles, th.Max
		l.overflow = th.Cycles - inRange
		if l.overflow < 0 || l.n == 0 {
			return latencies{}, fmt.Errorf("cyclictest: %d cycles, %d in the histogram", th.Cycles, inRange)
		}
	}
	return l, nil
}

// mixedResult is what /bin/mixedapp reports besides the latencies.
type mixedResult struct {
	lat    latencies
	policy string // of the RT loop: "SCHED_FIFO 80"
	missed int64  // cycles not run because the previous one ended after their wake-up time
}

// parseMixedApp reads /bin/mixedapp's output (see integration/testdata/mixedapp.c).
func parseMixedApp(out string) (mixedResult, error) {
	r := mixedResult{lat: latencies{counts: map[int64]int64{}}}
	var sawHead, sawStats bool
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) > 2 && f[0] == "mixedapp":
			kv := fields(f[1:])
			r.policy = strings.TrimSpace(kv["policy"] + " " + kv["priority"])
			sawHead = true
		case len(f) > 0 && strings.HasPrefix(f[0], "cycles="):
			kv := fields(f)
			var err error
			if r.lat.n, err = strconv.ParseInt(kv["cycles"], 10, 64); err == nil {
				if r.missed, err = strconv.ParseInt(kv["missed"], 10, 64); err == nil {
					r.lat.max, err = strconv.ParseInt(kv["max_us"], 10, 64)
				}
			}
			if err != nil {
				return r, fmt.Errorf("mixedapp: %q: %w", strings.TrimSpace(line), err)
			}
			sawStats = true
		case len(f) == 3 && f[0] == "h":
			v, err1 := strconv.ParseInt(f[1], 10, 64)
			c, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return r, fmt.Errorf("mixedapp: bad histogram line %q", strings.TrimSpace(line))
			}
			r.lat.counts[v] += c
		}
	}
	var sum int64
	for _, c := range r.lat.counts {
		sum += c
	}
	if !sawHead || !sawStats || sum != r.lat.n || r.lat.n == 0 {
		return r, fmt.Errorf("mixedapp: incomplete output (%d cycles, %d in the histogram):\n%s", r.lat.n, sum, out)
	}
	return r, nil
}

// fields splits "k=v" words into a map.
func fields(words []string) map[string]string {
	m := map[string]string{}
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestLatencyParsers(t *testing.T) {
	ct := "WARN: not setting cpu_dma_latency from cyclictest\n{\n  \"file_version\": 1,\n  \"return_code\": 0,\n" +
		"  \"num_threads\": 1,\n  \"thread\": {\n    \"0\": {\n      \"histogram\": {\"3\": 90, \"4\": 5, \"900\": 3},\n" +
		"      \"cycles\": 100,\n      \"min\": 3,\n      \"max\": 1500000,\n      \"avg\": 4.2\n    }\n  }\n}\n"
	l, err := parseCyclictest(ct)
	if err != nil {
		t.Fatal(err)
	}
	if l.n != 100 || l.overflow != 2 || l.max != 1500000 {
		t.Errorf("parsed %+v", l)
	}
	for p, want := range map[float64]float64{50: 3, 90: 3, 95: 4, 98: 900, 99: math.Inf(1)} {
		if got := l.percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if a, b := l.above(4), l.above(899.5); a != 5 || b != 5 {
		t.Errorf("above(4), above(899.5) = %d, %d; want 5, 5", a, b)
	}
	if s := l.series("x"); s.Counts[1500000] != 2 || s.Counts[3] != 90 {
		t.Errorf("series %+v", s)
	}
	for _, bad := range []string{"", "Unable to change scheduling policy!\n", strings.Replace(ct, `"return_code": 0`, `"return_code": 1`, 1)} {
		if _, err := parseCyclictest(bad); err == nil {
			t.Errorf("parseCyclictest(%q): want an error", bad)
		}
	}

	mixed := "mixedapp policy=SCHED_FIFO priority=80 helper=SCHED_OTHER burners=2 interval_us=1000 work_us=50\n" +
		"cycles=4 missed=7 min_us=55 p50_us=60 p99_us=75000 max_us=75000\nh 55 1\nh 60 2\nh 75000 1\n"
	r, err := parseMixedApp(mixed)
	if err != nil {
		t.Fatal(err)
	}
	if r.policy != "SCHED_FIFO 80" || r.missed != 7 || r.lat.n != 4 || r.lat.max != 75000 || r.lat.percentile(50) != 60 || r.lat.percentile(99) != 75000 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseMixedApp(strings.Replace(mixed, "h 60 2\n", "", 1)); err == nil {
		t.Error("histogram short of the cycles: want an error")
	}
	if math.IsNaN((latencies{}).percentile(50)) == false {
		t.Error("percentile of nothing is not NaN")
	}

	tb := newTable("name", "p99 µs")
	tb.add("a|b", "12")
	tb.add("c", "> 1000000")
	if got := tb.markdown(); got != "| name | p99 µs |\n|---|--:|\n| a\\|b | 12 |\n| c | > 1000000 |\n" {
		t.Errorf("markdown:\n%s", got)
	}
	if got := tb.text(); got != "  name     p99 µs\n  a|b          12\n  c     > 1000000\n" {
		t.Errorf("text:\n%q", got)
	}
}
