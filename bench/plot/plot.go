// Package plot draws the benchmarks' figures as small, self-contained SVG files, written by
// hand with the standard library: latency histograms (Histogram) and grouped bar charts
// (Bars). The output is deterministic, so regenerated figures only differ where the data does.
package plot

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Figure size and margins, in SVG user units (pixels).
const (
	width        = 720
	height       = 380
	marginLeft   = 70
	marginRight  = 20
	marginTop    = 40
	marginBottom = 80 // x labels, axis title and the legend
	fontFamily   = "sans-serif"
)

// palette is the colour of each series in order (ColorBrewer Dark2, readable by most
// colour-blind people and on paper).
var palette = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"}

func color(i int) string { return palette[i%len(palette)] }

// canvas accumulates the SVG's elements; the first write error is kept and reported by end.
type canvas struct {
	w   *bufio.Writer
	err error
}

// newCanvas starts an SVG whose legend holds names: a legend wider than the figure wraps
// onto more rows, and the figure grows to hold them.
func newCanvas(w io.Writer, title string, names []string) *canvas {
	c := &canvas{w: bufio.NewWriter(w)}
	h := height + (len(legendRows(names))-1)*legendRow
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12">`+"\n",
		width, h, width, h, fontFamily)
	c.printf("<title>%s</title>\n", esc(title))
	c.printf(`<rect width="%d" height="%d" fill="white"/>`+"\n", width, h)
	c.text(width/2, 22, "middle", 14, "bold", title)
	return c
}

func (c *canvas) printf(format string, args ...any) {
	if c.err == nil {
		_, c.err = fmt.Fprintf(c.w, format, args...)
	}
}

// text writes a label at (x, y); anchor is start, middle or end.
func (c *canvas) text(x, y float64, anchor string, size int, weight, s string) {
	extra := ""
	if weight != "" {
		extra = fmt.Sprintf(` font-weight="%s"`, weight)
	}
	c.printf(`<text x="%s" y="%s" text-anchor="%s" font-size="%d"%s>%s</text>`+"\n", num(x), num(y), anchor, size, extra, esc(s))
}

func (c *canvas) line(x1, y1, x2, y2 float64, stroke string) {
	c.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`+"\n", num(x1), num(y1), num(x2), num(y2), stroke)
}

// legendRow is the height of a row of the legend.
const legendRow = 18

// legendRows splits the legend's entries (indexes into names) into rows that fit the width.
func legendRows(names []string) [][]int {
	rows := [][]int{nil}
	x := 0.0
	for i, n := range names {
		w := 16 + textWidth(n) + 18
		if x > 0 && marginLeft+x+w-18 > width-marginRight {
			rows, x = append(rows, nil), 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], i)
		x += w
	}
	return rows
}

// legend draws one swatch and name per series, in rows under the plot area.
func (c *canvas) legend(names []string) {
	for r, row := range legendRows(names) {
		x, y := float64(marginLeft), float64(height-14+r*legendRow)
		for _, i := range row {
			c.printf(`<rect x="%s" y="%s" width="12" height="12" fill="%s"/>`+"\n", num(x), num(y-10), color(i))
			c.text(x+16, y, "start", 12, "", names[i])
			x += 16 + textWidth(names[i]) + 18
		}
	}
}

// end closes the SVG and flushes it.
func (c *canvas) end() error {
	c.printf("</svg>\n")
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// textWidth estimates the width of s at 12px (no font metrics without a renderer).
func textWidth(s string) float64 { return 6.8 * float64(len([]rune(s))) }

// num formats a coordinate with at most one decimal, keeping the files small.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func esc(s string) string { return html.EscapeString(s) }

// plotArea is the rectangle of the data, inside the margins.
type plotArea struct{ x0, y0, x1, y1 float64 } // x0,y1 bottom left; x1,y0 top right

func area() plotArea {
	return plotArea{x0: marginLeft, y0: marginTop, x1: width - marginRight, y1: height - marginBottom}
}

// logScale maps [lo, hi] (both > 0) logarithmically onto [p0, p1].
type logScale struct{ lo, hi, p0, p1 float64 }

func (s logScale) at(v float64) float64 {
	v = math.Min(math.Max(v, s.lo), s.hi)
	return s.p0 + (math.Log10(v)-math.Log10(s.lo))/(math.Log10(s.hi)-math.Log10(s.lo))*(s.p1-s.p0)
}

// decades lists the powers of ten from lo to hi, both included.
func decades(lo, hi float64) []float64 {
	var out []float64
	for e := math.Round(math.Log10(lo)); e <= math.Round(math.Log10(hi)); e++ {
		out = append(out, math.Pow(10, e))
	}
	return out
}

// decadeFloor and decadeCeil round v > 0 down and up to a power of ten.
func decadeFloor(v float64) float64 { return math.Pow(10, math.Floor(math.Log10(v)+1e-9)) }
func decadeCeil(v float64) float64  { return math.Pow(10, math.Ceil(math.Log10(v)-1e-9)) }

// Micros formats a number of microseconds for an axis or label: "50 µs", "2 ms", "1.5 s".
func Micros(us float64) string {
	switch {
	case us >= 1e6:
		return trim(us/1e6) + " s"
	case us >= 1e3:
		return trim(us/1e3) + " ms"
	default:
		return trim(us) + " µs"
	}
}

// Plain formats a number with up to three significant digits.
func Plain(v float64) string { return trim(v) }

func trim(v float64) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if strings.ContainsAny(s, "e") {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s
}
