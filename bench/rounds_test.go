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
// The goals read the rounds' samples pooled (p99 and p99.9 of all of a side's wake-ups), not
// the median of the rounds' own percentiles: a round of 2 s has 2000 samples, so its p99.9 is
// its third slowest wake-up; and a median of 5 rounds jumps as a whole when a stretch of other
// work covers 3 of one side's rounds and 2 of the other's, while a pooled tail moves with the
// share of each side's time the stretch covered, which the interleaving keeps about equal.
// The per-round range (the lowest and highest of the rounds' own percentiles) is reported next
// to each pooled figure, for the host too, so that a reader sees how much the host drifted.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
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

// latencyHead and latencyCells are the figures of a pooled run in a table.
var latencyHead = []string{"samples", "p50 µs", "p99 µs", "p99 µs, rounds", "p99.9 µs", "p99.9 µs, rounds", "max µs"}

func latencyCells(r pooledRun) []string {
	return []string{strconv.FormatInt(r.lat.n, 10), us(r.lat.percentile(50)), us(r.lat.percentile(99)), r.spreadText(99),
		us(r.lat.percentile(99.9)), r.spreadText(99.9), us(float64(r.lat.max))}
}

// hostGoal records the goal of got's pooled p-th percentile against the host's:
// ≤ max(goalHostFactor × host, host + goalHostSlackUS). who names got in the goal
// ("idle: rt shim"). It returns "" when the goal is met, else what missed, for the report.
func hostGoal(s *benchSection, who string, p float64, host, got pooledRun) string {
	h, v := host.lat.percentile(p), got.lat.percentile(p)
	limit := math.Max(goalHostFactor*h, h+goalHostSlackUS)
	s.goal(fmt.Sprintf("%s p%v vs host p%v (%s µs; rounds %s)", who, p, p, us(h), host.spreadText(p)),
		fmt.Sprintf("%s µs (rounds %s)", us(v), got.spreadText(p)),
		fmt.Sprintf("≤ max(%.1f × host, host + %d µs) = %s µs", goalHostFactor, goalHostSlackUS, us(limit)), v <= limit)
	if v <= limit {
		return ""
	}
	return fmt.Sprintf("%s, p%v: %d of its %d wake-ups and %d of the host's %d took longer than %s µs (max %s and %s µs; "+
		"rounds' p%v %s µs against the host's %s µs)", who, p, got.lat.above(limit), got.lat.n, host.lat.above(limit), host.lat.n,
		us(limit), us(float64(got.lat.max)), us(float64(host.lat.max)), p, got.spreadText(p), host.spreadText(p))
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
	if p20, p50 := b.lat.percentile(20), b.lat.percentile(50); p20 != 2 || p50 != 8 {
		t.Errorf("pooled p20, p50 = %v, %v; want 2, 8", p20, p50)
	}
	if p := b.lat.percentile(99); !math.IsInf(p, 1) {
		t.Errorf("pooled p99 = %v, want the overflows", p)
	}
	if _, err := interleave(2, []latencySide{{key: "x", measure: func(int) (latencyRun, error) {
		return latencyRun{}, fmt.Errorf("boom")
	}}}); err == nil {
		t.Error("a failed round: want an error")
	}
}
