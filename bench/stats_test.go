//go:build linux

package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Statistics for the benchmarks.

// median of xs (the mean of the middle two when len(xs) is even); NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs: the
// smallest value with at least p% of xs at or below it. NaN when empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// ratioCI is a 95% percentile-bootstrap confidence interval of
// median(num)/median(den), resampling each sample independently with a fixed
// seed (so a rerun over the same data prints the same interval).
func ratioCI(num, den []float64) (lo, hi float64) { return quantileRatioCI(num, den, 50) }

// quantileRatioCI is ratioCI of the q-th percentiles (q = 50: the medians).
func quantileRatioCI(num, den []float64, q float64) (lo, hi float64) {
	stat := func(xs []float64) float64 { return percentile(xs, q) }
	if q == 50 {
		stat = median
	}
	if len(num) == 0 || len(den) == 0 {
		return math.NaN(), math.NaN()
	}
	const resamples = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	resample := func(xs, buf []float64) []float64 {
		for i := range buf {
			buf[i] = xs[rng.IntN(len(xs))]
		}
		return buf
	}
	nb, db := make([]float64, len(num)), make([]float64, len(den))
	ratios := make([]float64, resamples)
	for i := range ratios {
		ratios[i] = stat(resample(num, nb)) / stat(resample(den, db))
	}
	return percentile(ratios, 2.5), percentile(ratios, 97.5)
}

// pairedRatio is the median over rounds of num[i]/den[i]: the ratio with
// slow drifts of the host (load from elsewhere) paired away.
func pairedRatio(num, den []float64) float64 {
	ratios := make([]float64, min(len(num), len(den)))
	for i := range ratios {
		ratios[i] = num[i] / den[i]
	}
	return median(ratios)
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// verdict is PASS when got ≤ goal, MISS otherwise.
func verdict(got, goal float64) string {
	if got <= goal {
		return "PASS"
	}
	return "MISS"
}

func TestBenchStats(t *testing.T) {
	for _, tc := range []struct {
		xs          []float64
		median, p95 float64
	}{
		{[]float64{3}, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
		{[]float64{5, 1, 4, 2, 3}, 3, 5},
		{[]float64{20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 10.5, 19},
	} {
		if got := median(tc.xs); got != tc.median {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.median)
		}
		if got := percentile(tc.xs, 95); got != tc.p95 {
			t.Errorf("percentile(%v, 95) = %v, want %v", tc.xs, got, tc.p95)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 50)) {
		t.Error("median or percentile of nothing is not NaN")
	}
	num, den := []float64{11, 12, 10, 11, 13}, []float64{10, 10, 9, 11, 10}
	lo, hi := ratioCI(num, den)
	if r := median(num) / median(den); !(lo <= r && r <= hi) {
		t.Errorf("ratioCI = [%v, %v], does not contain the ratio %v", lo, hi, r)
	}
	if got := pairedRatio([]float64{2, 3, 8}, []float64{1, 3, 4}); got != 2 {
		t.Errorf("pairedRatio = %v, want 2", got)
	}
}

// TestWilliams checks the balanced Latin squares BenchmarkLifecycle orders its kinds by: over
// n rounds, each kind runs once in each position and right after each other kind once.
func TestWilliams(t *testing.T) {
	for _, n := range []int{2, 4, 6, 8} {
		offs := williams(n)
		if len(offs) != n {
			t.Fatalf("williams(%d) = %v: want %d offsets", n, offs, n)
		}
		pos := map[[2]int]int{}   // kind, position -> times
		after := map[[2]int]int{} // kind, previous kind -> times
		for r := range n {
			prev := -1
			for i, off := range offs {
				k := (r + off) % n
				pos[[2]int{k, i}]++
				if prev >= 0 {
					after[[2]int{k, prev}]++
				}
				prev = k
			}
		}
		for k := range n {
			for i := range n {
				if pos[[2]int{k, i}] != 1 {
					t.Errorf("williams(%d) = %v: kind %d runs %d times in position %d", n, offs, k, pos[[2]int{k, i}], i)
				}
				if i != k && after[[2]int{k, i}] != 1 {
					t.Errorf("williams(%d) = %v: kind %d runs right after kind %d %d times", n, offs, k, i, after[[2]int{k, i}])
				}
			}
		}
	}
}
