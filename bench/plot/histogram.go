package plot

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// Histogram draws distributions as step lines over a logarithmic x axis. The y axis is each
// series' share of its samples per bin, logarithmic too: the rare long latencies a real-time
// system is judged by show next to the bulk instead of vanishing under it.
type Histogram struct {
	Title  string
	XLabel string
	// XFormat labels the x ticks (decades); default Plain.
	XFormat func(float64) string
	// BinsPerDecade is the resolution of the x axis; default 10.
	BinsPerDecade int
	Series        []Series
}

// Series is one distribution: Counts[v] samples have value v. Values below the axis's first
// decade (and zero) are drawn in its first bin.
type Series struct {
	Name   string
	Counts map[float64]float64
}

func (s Series) total() float64 {
	var n float64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// WriteSVG writes the histogram as an SVG document.
func (h Histogram) WriteSVG(w io.Writer) error {
	format := h.XFormat
	if format == nil {
		format = Plain
	}
	perDecade := h.BinsPerDecade
	if perDecade <= 0 {
		perDecade = 10
	}

	// The x range: whole decades around every positive value.
	lo, hi := math.Inf(1), 0.0
	for _, s := range h.Series {
		for v, c := range s.Counts {
			if c > 0 && v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	lo = decadeFloor(lo)
	hi = decadeCeil(hi * 1.0001)
	if hi <= lo {
		hi = lo * 10
	}
	nbins := int(math.Round(math.Log10(hi/lo))) * perDecade
	edge := func(i int) float64 { return lo * math.Pow(10, float64(i)/float64(perDecade)) }
	bin := func(v float64) int {
		if v <= lo {
			return 0
		}
		return min(int(math.Floor(math.Log10(v/lo)*float64(perDecade)+1e-9)), nbins-1)
	}

	// Shares per bin, and the y range: decades from the smallest share to 100%.
	shares := make([][]float64, len(h.Series))
	yLo := 100.0
	for i, s := range h.Series {
		shares[i] = make([]float64, nbins)
		total := s.total()
		if total == 0 {
			continue
		}
		// Sorted, so the float sums (and the file) do not depend on map order.
		for _, v := range slices.Sorted(maps.Keys(s.Counts)) {
			shares[i][bin(v)] += s.Counts[v] / total * 100
		}
		for _, p := range shares[i] {
			if p > 0 {
				yLo = math.Min(yLo, p)
			}
		}
	}
	yLo = math.Max(decadeFloor(yLo), 1e-4)
	if yLo >= 100 {
		yLo = 10
	}

	a := area()
	xs := logScale{lo: lo, hi: hi, p0: a.x0, p1: a.x1}
	ys := logScale{lo: yLo, hi: 100, p0: a.y1, p1: a.y0}
	var names []string
	for _, s := range h.Series {
		names = append(names, s.Name)
	}
	c := newCanvas(w, h.Title, names)

	// Grid, ticks and axes.
	for _, d := range decades(lo, hi) {
		x := xs.at(d)
		c.line(x, a.y0, x, a.y1, "#dddddd")
		c.text(x, a.y1+16, "middle", 11, "", format(d))
	}
	for _, d := range decades(yLo, 100) {
		y := ys.at(d)
		c.line(a.x0, y, a.x1, y, "#dddddd")
		c.text(a.x0-6, y+4, "end", 11, "", percent(d))
	}
	c.line(a.x0, a.y1, a.x1, a.y1, "black")
	c.line(a.x0, a.y0, a.x0, a.y1, "black")
	c.text((a.x0+a.x1)/2, a.y1+36, "middle", 12, "", h.XLabel)
	c.printf(`<text transform="translate(16 %s) rotate(-90)" text-anchor="middle" font-size="12">%s</text>`+"\n",
		num((a.y0+a.y1)/2), esc(fmt.Sprintf("share of samples per bin (%d bins per decade)", perDecade)))

	// One step line per series, over the bins from its first to its last sample.
	for i := range h.Series {
		first := slices.IndexFunc(shares[i], func(p float64) bool { return p > 0 })
		if first < 0 {
			continue
		}
		last := nbins - 1
		for shares[i][last] == 0 {
			last--
		}
		var path strings.Builder
		fmt.Fprintf(&path, "M%s %s", num(xs.at(edge(first))), num(a.y1))
		for b := first; b <= last; b++ {
			y := a.y1
			if p := shares[i][b]; p > 0 {
				y = ys.at(p)
			}
			fmt.Fprintf(&path, "L%s %sL%s %s", num(xs.at(edge(b))), num(y), num(xs.at(edge(b+1))), num(y))
		}
		fmt.Fprintf(&path, "L%s %s", num(xs.at(edge(last+1))), num(a.y1))
		c.printf(`<path d="%s" fill="none" stroke="%s" stroke-width="1.6" stroke-opacity="0.9"/>`+"\n", path.String(), color(i))
	}
	c.legend(names)
	return c.end()
}

func percent(p float64) string {
	return trim(p) + "%"
}
