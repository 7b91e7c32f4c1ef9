//go:build linux

package bench

// Interleaved rounds: how BenchmarkLatency and BenchmarkDocker measure wake-up latency, and
// how they read it against the host's.
//
//	RTSHIM_BENCH_LATENCY_ROUNDS   rounds of every latency scenario (default 5)
//	RTSHIM_BENCH_LATENCY_SECONDS  seconds of each row's measurement in a round (default 2)
//
// This host's own tail latency drifts between runs by more than a goal's margin (other work,
// the VM's host), so one long run of each side one after the other compares two stretches of
// time, not two runtimes. Instead every side of a scenario measures in short rounds, in an
// ABBA order (A B, B A, A B, ...), under one load that runs through them all: each side
// samples the same stretches of the host's drift.
//
// The goals read the median over the rounds of each round's own p99 and p99.9 (typical), not
// the percentiles of the rounds' samples pooled: the noise here comes in bursts (other work on
// the host) shorter than a scenario, and one round that a burst hit was seen at 4 to 30 times
// the p99.9 of its row's other rounds; pooled, its slow wake-ups are the whole tail of its row,
// while the median sets aside up to 2 of 5 rounds of each side. A stretch of noise long
// enough to cover most of one side's rounds covers the neighbouring rounds of the other too
// (the ABBA order keeps each pair adjacent). The price: a round of 2 s has 2000 samples, so
// its p99.9 is its third slowest wake-up, a noisy figure on its own. The range (the lowest and
// the highest of the rounds' own percentiles) is reported next to each median, for the host
// too, so that a reader sees how much the host drifted; the histograms and p50 and max pool
// the rounds.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// latencyRounds is RTSHIM_BENCH_LATENCY_ROUNDS.
func latencyRounds(b *testing.B) int { return envInt(b, "RTSHIM_BENCH_LATENCY_ROUNDS", 5) }

// latencySeconds is RTSHIM_BENCH_LATENCY_SECONDS.
func latencySeconds(b *testing.B) int { return envInt(b, "RTSHIM_BENCH_LATENCY_SECONDS", 2) }

// merge adds o's samples to l.
func (l *latencies) merge(o latencies) {
	if l.counts == nil {
		l.counts = map[int64]int64{}
	}
	for v, c := range o.counts {
		l.counts[v] += c
	}
	l.n += o.n
	l.overflow += o.overflow
	l.max = max(l.max, o.max)
}

// pooledRun is one side of a scenario over all its rounds: lat pools the rounds' samples
// (policy, tool and note are the same in every round).
type pooledRun struct {
	latencyRun
	rounds []latencies
}

// typical is the figure the goals read: the median over the rounds of each round's p-th
// percentile.
func (r pooledRun) typical(p float64) float64 {
	xs := make([]float64, len(r.rounds))
	for i, l := range r.rounds {
		xs[i] = l.percentile(p)
	}
	return median(xs)
}

// spread is the lowest and the highest p-th percentile of a single round.
func (r pooledRun) spread(p float64) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	for i, l := range r.rounds {
		v := l.percentile(p)
		if i == 0 || v < lo {
			lo = v
		}
		if i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// spreadText is spread as "41–96" (µs).
func (r pooledRun) spreadText(p float64) string {
	lo, hi := r.spread(p)
	return us(lo) + "–" + us(hi)
}

// roundsAbove counts the rounds in which r's p-th percentile was above other's in the same
// round. The ABBA order measures the two sides of a round back to back, so this pairs each
// round with the host's stretch of time next to it: a container slower by its runtime is
// above in (nearly) every round, host noise puts it above in about half.
func (r pooledRun) roundsAbove(other pooledRun, p float64) (above, n int) {
	n = min(len(r.rounds), len(other.rounds))
	for i := range n {
		if r.rounds[i].percentile(p) > other.rounds[i].percentile(p) {
			above++
		}
	}
	return above, n
}

// latencySide is one side of a scenario: measure runs its round-th measurement.
type latencySide struct {
	key     string
	measure func(round int) (latencyRun, error)
}

// abba is the order of the sides in round: as given in even rounds, reversed in odd ones, so
// that over two rounds every side has been measured as early and as late as every other.
func abba[T any](sides []T, round int) []T {
	if round%2 == 0 {
		return sides
	}
	r := slices.Clone(sides)
	slices.Reverse(r)
	return r
}

// interleave measures every side rounds times (abba's order) and pools each side's rounds,
// by key.
func interleave(rounds int, sides []latencySide) (map[string]pooledRun, error) {
	runs := map[string]pooledRun{}
	for round := range rounds {
		for _, s := range abba(sides, round) {
			r, err := s.measure(round)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d of %d: %w", s.key, round+1, rounds, err)
			}
			p := runs[s.key]
			p.policy, p.tool, p.note = r.policy, r.tool, r.note
			p.lat.merge(r.lat)
			p.rounds = append(p.rounds, r.lat)
			runs[s.key] = p
		}
	}
	return runs, nil
}

// latencyHead and latencyCells are the figures of a run in a table: samples, p50 and max of
// the rounds pooled; p99 and p99.9 as the goals read them (typical) and their range.
var latencyHead = []string{"samples", "p50 µs", "p99 µs, median of rounds", "p99 µs, rounds", "p99.9 µs, median of rounds",
	"p99.9 µs, rounds", "max µs"}

func latencyCells(r pooledRun) []string {
	return []string{strconv.FormatInt(r.lat.n, 10), us(r.lat.percentile(50)), us(r.typical(99)), r.spreadText(99),
		us(r.typical(99.9)), r.spreadText(99.9), us(float64(r.lat.max))}
}

// printRounds prints every round's p99 and p99.9 of run r (named name) and its pooled
// figures, for whoever wants to read the rounds against another statistic.
func printRounds(name string, r pooledRun) {
	each := func(p float64) string {
		var b strings.Builder
		for i, l := range r.rounds {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(us(l.percentile(p)))
		}
		return b.String()
	}
	fmt.Printf("rounds, %s: p99 %s, p99.9 %s µs; pooled p99 %s, p99.9 %s µs\n", name, each(99), each(99.9),
		us(r.lat.percentile(99)), us(r.lat.percentile(99.9)))
}

// hostGoal records the goal of got's typical p-th percentile against the host's:
// ≤ max(goalHostFactor × host, host + goalHostSlackUS). who names got in the goal
// ("idle: rt shim"). It returns "" when the goal is met, else what missed, for the report.
func hostGoal(s *benchSection, who string, p float64, host, got pooledRun) string {
	h, v := host.typical(p), got.typical(p)
	limit := math.Max(goalHostFactor*h, h+goalHostSlackUS)
	s.goal(fmt.Sprintf("%s p%v vs host p%v (%s µs; rounds %s)", who, p, p, us(h), host.spreadText(p)),
		fmt.Sprintf("%s µs (rounds %s)", us(v), got.spreadText(p)),
		fmt.Sprintf("≤ max(%.1f × host, host + %d µs) = %s µs", goalHostFactor, goalHostSlackUS, us(limit)), v <= limit)
	if v <= limit {
		return ""
	}
	above, n := got.roundsAbove(host, p)
	return fmt.Sprintf("%s, p%v: %d of its %d wake-ups and %d of the host's %d took longer than %s µs (max %s and %s µs; "+
		"rounds' p%v %s µs against the host's %s µs, above the host's of the same round in %d of %d; pooled %s and %s µs)",
		who, p, got.lat.above(limit), got.lat.n, host.lat.above(limit), host.lat.n, us(limit), us(float64(got.lat.max)),
		us(float64(host.lat.max)), p, got.spreadText(p), host.spreadText(p), above, n, us(got.lat.percentile(p)),
		us(host.lat.percentile(p)))
}

func TestInterleave(t *testing.T) {
	// Each round's sample is its position in the whole sequence: the order is visible.
	var seq []string
	side := func(key string) latencySide {
		return latencySide{key: key, measure: func(round int) (latencyRun, error) {
			seq = append(seq, fmt.Sprintf("%s%d", key, round))
			v := int64(len(seq))
			return latencyRun{tool: key, lat: latencies{counts: map[int64]int64{v: 2}, n: 3, overflow: 1, max: 2000000 + v}}, nil
		}}
	}
	runs, err := interleave(3, []latencySide{side("a"), side("b"), side("c")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(seq), "[a0 b0 c0 c1 b1 a1 a2 b2 c2]"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	b := runs["b"]
	if b.tool != "b" || len(b.rounds) != 3 || b.lat.n != 9 || b.lat.overflow != 3 || b.lat.max != 2000008 ||
		b.lat.counts[2] != 2 || b.lat.counts[5] != 2 || b.lat.counts[8] != 2 {
		t.Errorf("pooled b: %+v", b)
	}
	// Each round: two samples at its position (2, 5, 8 µs) and one overflow, so each round's
	// p50 is its position; pooled (2 2 5 5 8 8 and three overflows), p20 is 2 and p50 is 8.
	if lo, hi := b.spread(50); lo != 2 || hi != 8 {
		t.Errorf("spread(50) = %v–%v, want 2–8", lo, hi)
	}
	if m := b.typical(50); m != 5 {
		t.Errorf("typical(50) = %v, want 5, the median of the rounds' 2, 5 and 8", m)
	}
	if p20, p50 := b.lat.percentile(20), b.lat.percentile(50); p20 != 2 || p50 != 8 {
		t.Errorf("pooled p20, p50 = %v, %v; want 2, 8", p20, p50)
	}
	if p := b.lat.percentile(99); !math.IsInf(p, 1) {
		t.Errorf("pooled p99 = %v, want the overflows", p)
	}
	// c's rounds sit at positions 3, 4 and 9, a's at 1, 6 and 7: above in rounds 1 and 3.
	if above, n := runs["c"].roundsAbove(runs["a"], 50); above != 2 || n != 3 {
		t.Errorf("c above a in %d of %d rounds, want 2 of 3", above, n)
	}
	if _, err := interleave(2, []latencySide{{key: "x", measure: func(int) (latencyRun, error) {
		return latencyRun{}, fmt.Errorf("boom")
	}}}); err == nil {
		t.Error("a failed round: want an error")
	}
}
