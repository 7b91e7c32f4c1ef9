package plot

import (
	"io"
	"math"
	"strings"
)

// Bars is a grouped bar chart: one bar per series in each group, labelled with its value.
type Bars struct {
	Title  string
	YLabel string
	// LogY makes the y axis logarithmic (for values that span decades, such as the
	// latencies of an RT thread and of a throttled one); values ≤ 0 then have no bar.
	LogY bool
	// YFormat labels the y ticks and the bars; default Plain.
	YFormat func(float64) string
	// Groups name the groups along the x axis; "\n" breaks a name into lines.
	Groups []string
	Series []BarSeries
}

// BarSeries is one bar per group, in the order of Bars.Groups; NaN is no bar.
type BarSeries struct {
	Name   string
	Values []float64
}

// WriteSVG writes the chart as an SVG document.
func (b Bars) WriteSVG(w io.Writer) error {
	format := b.YFormat
	if format == nil {
		format = Plain
	}
	ok := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && (!b.LogY || v > 0) }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range b.Series {
		for _, v := range s.Values {
			if ok(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}

	var names []string
	for _, s := range b.Series {
		names = append(names, s.Name)
	}
	a := area()
	c := newCanvas(w, b.Title, names)
	var at func(float64) float64
	var ticks []float64
	switch {
	case math.IsInf(hi, -1): // no values
		at = func(float64) float64 { return a.y1 }
	case b.LogY:
		// A decade or more below the lowest bar, so every bar has a visible height.
		s := logScale{lo: decadeFloor(lo / 3), hi: decadeCeil(hi * 1.5), p0: a.y1, p1: a.y0}
		at, ticks = s.at, decades(s.lo, s.hi)
	default:
		top, step := niceRange(math.Max(hi, 0) * 1.15)
		at = func(v float64) float64 { return a.y1 - math.Max(v, 0)/top*(a.y1-a.y0) }
		for v := 0.0; v <= top+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	for _, t := range ticks {
		y := at(t)
		c.line(a.x0, y, a.x1, y, "#dddddd")
		c.text(a.x0-6, y+4, "end", 11, "", format(t))
	}
	c.line(a.x0, a.y1, a.x1, a.y1, "black")
	c.line(a.x0, a.y0, a.x0, a.y1, "black")
	c.printf(`<text transform="translate(16 %s) rotate(-90)" text-anchor="middle" font-size="12">%s</text>`+"\n",
		num((a.y0+a.y1)/2), esc(b.YLabel))

	n := max(len(b.Groups), 1)
	groupW := (a.x1 - a.x0) / float64(n)
	barW := groupW * 0.8 / float64(max(len(b.Series), 1))
	for g, name := range b.Groups {
		gx := a.x0 + float64(g)*groupW
		for i, line := range strings.Split(name, "\n") {
			c.text(gx+groupW/2, a.y1+16+float64(i)*13, "middle", 11, "", line)
		}
		for i, s := range b.Series {
			if g >= len(s.Values) || !ok(s.Values[g]) {
				continue
			}
			v := s.Values[g]
			x, y := gx+groupW*0.1+float64(i)*barW, at(v)
			c.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
				num(x), num(y), num(barW*0.92), num(a.y1-y), color(i), esc(s.Name+": "+format(v)))
			label := format(v)
			if textWidth(label)*10/12 <= barW {
				c.text(x+barW*0.46, y-3, "middle", 10, "", label)
			} else {
				// Too wide for its bar (many groups): upright, so that neighbours do not overlap.
				c.printf(`<text transform="translate(%s %s) rotate(-90)" text-anchor="start" font-size="10">%s</text>`+"\n",
					num(x+barW*0.46+3.5), num(y-3), esc(label))
			}
		}
	}
	c.legend(names)
	return c.end()
}

// niceRange rounds max up to a "nice" axis top (a multiple of 1, 2 or 5 times a power of
// ten) divided into about five steps.
func niceRange(max float64) (top, step float64) {
	if max <= 0 {
		return 1, 0.2
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return math.Ceil(max/step) * step, step
}
