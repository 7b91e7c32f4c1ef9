package plot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// wellFormed parses svg as XML and returns the text of every element, so a test can look
// for labels without matching markup.
func wellFormed(t *testing.T, svg []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteString("|")
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return text.String()
}

func TestHistogram(t *testing.T) {
	h := Histogram{
		Title:   `idle <host> & "containers"`,
		XLabel:  "latency",
		XFormat: Micros,
		Series: []Series{
			{Name: "host", Counts: map[float64]float64{3: 900, 4: 90, 40: 9, 2000: 1}},
			{Name: "rt shim", Counts: map[float64]float64{0: 5, 5: 995}},
			{Name: "empty", Counts: map[float64]float64{}},
		},
	}
	var a, b bytes.Buffer
	if err := h.WriteSVG(&a); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings of the same histogram differ")
	}
	text := wellFormed(t, a.Bytes())
	for _, want := range []string{`idle <host> & "containers"`, "1 µs", "10 ms", "100%", "host", "rt shim", "empty", "latency"} {
		if !strings.Contains(text, want+"|") {
			t.Errorf("no label %q in %s", want, text)
		}
	}
	// Two series with samples: two step lines. The empty one has a legend entry only.
	if n := bytes.Count(a.Bytes(), []byte("<path ")); n != 2 {
		t.Errorf("%d paths, want 2", n)
	}
	if a.Len() > 8000 {
		t.Errorf("histogram of 3 series is %d bytes: keep the committed figures small", a.Len())
	}
}

func TestHistogramNoData(t *testing.T) {
	var buf bytes.Buffer
	if err := (Histogram{Title: "nothing"}).WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
}

func TestBars(t *testing.T) {
	for _, logY := range []bool{false, true} {
		b := Bars{
			Title:   "p99",
			YLabel:  "µs",
			LogY:    logY,
			YFormat: Micros,
			Groups:  []string{"idle", "own container\nbusy"},
			Series: []BarSeries{
				{Name: "host", Values: []float64{12, 30}},
				{Name: "runc shim", Values: []float64{math.NaN(), 25000}},
				{Name: "zero", Values: []float64{0}},
			},
		}
		var buf bytes.Buffer
		if err := b.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		text := wellFormed(t, buf.Bytes())
		for _, want := range []string{"p99", "idle", "own container", "busy", "12 µs", "25 ms", "runc shim"} {
			if !strings.Contains(text, want+"|") {
				t.Errorf("logY=%v: no label %q in %s", logY, want, text)
			}
		}
		if bytes.Contains(buf.Bytes(), []byte("rotate(-90)\" text-anchor=\"start\"")) {
			t.Errorf("logY=%v: a value label of a wide bar is upright", logY)
		}
		// NaN never has a bar; 0 has one (of height 0) only on a linear axis.
		want := 3
		if !logY {
			want = 4
		}
		if n := bytes.Count(buf.Bytes(), []byte("<rect x=")); n != want+3 { // + 3 legend swatches
			t.Errorf("logY=%v: %d rects, want %d bars and 3 swatches", logY, n, want)
		}
	}
}

// TestBarsNarrow: value labels wider than their bars stand upright, so that they do not overlap.
func TestBarsNarrow(t *testing.T) {
	b := Bars{Title: "p99", YFormat: Micros, LogY: true}
	for g := range 8 {
		b.Groups = append(b.Groups, strconv.Itoa(g))
	}
	for _, name := range []string{"host", "rt shim", "runc shim"} {
		s := BarSeries{Name: name}
		for range b.Groups {
			s.Values = append(s.Values, 1234)
		}
		b.Series = append(b.Series, s)
	}
	var buf bytes.Buffer
	if err := b.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	text := wellFormed(t, buf.Bytes())
	if n := bytes.Count(buf.Bytes(), []byte("rotate(-90)\" text-anchor=\"start\"")); n != 24 || !strings.Contains(text, "1.23 ms|") {
		t.Errorf("%d upright value labels, want 24; labels %s", n, text)
	}
}

func TestNiceRange(t *testing.T) {
	for _, tc := range []struct{ max, top, step float64 }{
		{1.15, 1.5, 0.5},
		{9, 10, 2},
		{11.5, 15, 5},
		{0, 1, 0.2},
		{1234, 1500, 500},
	} {
		top, step := niceRange(tc.max)
		if math.Abs(top-tc.top) > 1e-9 || math.Abs(step-tc.step) > 1e-9 {
			t.Errorf("niceRange(%v) = %v, %v; want %v, %v", tc.max, top, step, tc.top, tc.step)
		}
	}
}

func TestMicros(t *testing.T) {
	for v, want := range map[float64]string{3: "3 µs", 12.5: "12.5 µs", 1000: "1 ms", 25000: "25 ms", 1.5e6: "1.5 s", 123456: "123 ms"} {
		if got := Micros(v); got != want {
			t.Errorf("Micros(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestLegendWraps(t *testing.T) {
	long := strings.Repeat("a long series name ", 2)
	names := []string{long, long, long, "x"}
	rows := legendRows(names)
	if len(rows) < 2 {
		t.Fatalf("legend of 4 long names in %d row(s), want it wrapped", len(rows))
	}
	for _, r := range rows {
		if len(r) == 0 {
			t.Errorf("empty legend row in %v", rows)
		}
	}
	var buf bytes.Buffer
	if err := (Histogram{Title: "t", Series: []Series{{Name: long}, {Name: long}, {Name: long}, {Name: "x"}}}).WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	want := fmt.Sprintf(`height="%d"`, height+(len(rows)-1)*legendRow)
	if !bytes.Contains(buf.Bytes(), []byte(want)) {
		t.Errorf("figure does not grow to hold the legend: no %s", want)
	}
}
