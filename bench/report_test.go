//go:build linux

package bench

// The benchmarks' report: each benchmark prints its tables on stdout and, when
// RTSHIM_BENCH_REPORT_DIR is set (make bench sets it), saves the same tables, its goals and
// its figures there as a section of docs/benchmarks.md (bench/report assembles the
// page).

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rtshim/rtshim/bench/report"
)

// benchSection is one benchmark's part of the report.
type benchSection struct {
	*report.Section
	goals *table
}

// newSection starts the section name ("30-latency": the prefix orders the page) with a title.
func newSection(name, title string) *benchSection {
	s := &benchSection{
		Section: &report.Section{Name: name},
		goals:   newTable("goal", "measured", "wanted", "verdict"),
	}
	s.Printf("## %s\n\n", title)
	return s
}

// para adds a paragraph to the report (not printed: the tables say it on stdout).
func (s *benchSection) para(format string, args ...any) {
	s.Printf(format+"\n\n", args...)
}

// table prints t on stdout and adds it to the report.
func (s *benchSection) table(t *table) {
	fmt.Print("\n" + t.text())
	s.Printf("%s\n", t.markdown())
}

// pre prints text on stdout and adds it to the report as a code block.
func (s *benchSection) pre(text string) {
	fmt.Print(text)
	s.Printf("```\n%s\n```\n\n", strings.Trim(text, "\n"))
}

// goal records a figure against its goal, for the section's goal table and the page's.
func (s *benchSection) goal(figure, measured, wanted string, pass bool) {
	v := "PASS"
	if !pass {
		v = "MISS"
	}
	s.goals.add(figure, measured, wanted, v)
	s.Goal(report.Goal{Figure: figure, Measured: measured, Goal: wanted, Verdict: v})
}

// plot adds an SVG figure; a figure that cannot be drawn fails the benchmark.
func (s *benchSection) plot(b *testing.B, name, alt string, write func(io.Writer) error) {
	b.Helper()
	if err := s.Plot(name, alt, write); err != nil {
		b.Error(err)
	}
}

// save prints the goal table and saves the section to RTSHIM_BENCH_REPORT_DIR, if set.
func (s *benchSection) save(b *testing.B) {
	b.Helper()
	if len(s.goals.rows) > 0 {
		fmt.Print("\n" + s.goals.text())
		s.Printf("%s\n", s.goals.markdown())
	}
	dir := os.Getenv("RTSHIM_BENCH_REPORT_DIR")
	if dir == "" {
		return
	}
	if err := s.Save(dir); err != nil {
		b.Errorf("save the report section: %v", err)
	}
}

// table is a table of strings, printed aligned on stdout and as Markdown in the report.
// Columns whose cells all look numeric are right-aligned.
type table struct {
	head []string
	rows [][]string
}

func newTable(head ...string) *table { return &table{head: head} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) numeric(col int) bool {
	seen := false
	for _, r := range t.rows {
		if col >= len(r) || r[col] == "" || r[col] == "-" {
			continue
		}
		c, _ := utf8.DecodeRuneInString(r[col])
		if !strings.ContainsRune("0123456789-+<>≤≥~.", c) {
			return false
		}
		seen = true
	}
	return seen
}

func (t *table) text() string {
	widths := make([]int, len(t.head))
	for _, r := range append([][]string{t.head}, t.rows...) {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	var sb strings.Builder
	line := func(r []string) {
		var l strings.Builder
		for i := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if t.numeric(i) {
				l.WriteString("  " + pad + c)
			} else {
				l.WriteString("  " + c + pad)
			}
		}
		sb.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	return sb.String()
}

func (t *table) markdown() string {
	var sb strings.Builder
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	sb.WriteString("|")
	for _, h := range t.head {
		sb.WriteString(" " + cell(h) + " |")
	}
	sb.WriteString("\n|")
	for i := range t.head {
		if t.numeric(i) {
			sb.WriteString("--:|")
		} else {
			sb.WriteString("---|")
		}
	}
	sb.WriteString("\n")
	for _, r := range t.rows {
		sb.WriteString("|")
		for i := range t.head {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			sb.WriteString(" " + cell(c) + " |")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// envInt reads a positive integer from the environment, def when unset.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// us formats microseconds for a table: "17", "1234", "> 1000000".
func us(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 1):
		return fmt.Sprintf("> %d", histMaxUS)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// ratio formats a ratio: two decimals below 10 (so 1.2003 against a goal of 1.2 reads
// 1.20, not 1.2), three significant digits above.
func ratio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case math.Abs(v) < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
