//go:build linux

package vmtest

import (
	"regexp"
	"strconv"
	"strings"
)

// exitMarker starts the line the VM's /init prints after the test binary returned.
const exitMarker = "rtshim-vm: exit status "

// console collects what the guest's `go test -v` printed on the serial console.
type console struct {
	results []result // every test and subtest result, in the order printed
	final   string   // the summary line: "PASS" or "FAIL"
	exit    int      // the test binary's status, from exitMarker
	exited  bool
	lines   []string // the last lines seen, for a report when something is missing
}

// result is one "--- PASS: TestV2X/sub (1.20s)" line.
type result struct {
	name, status, elapsed string
}

var (
	ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-~])`)
	resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+s)\)$`)
)

const keepLines = 40

// clean strips what the serial line adds to the guest's output: carriage returns and
// terminal escape sequences (the firmware's screen clearing).
func clean(line string) string {
	return strings.TrimRight(ansiEscape.ReplaceAllString(strings.ReplaceAll(line, "\r", ""), ""), " \t")
}

// feed takes one console line (already cleaned).
func (c *console) feed(line string) {
	c.lines = append(c.lines, line)
	if len(c.lines) > keepLines {
		c.lines = c.lines[1:]
	}
	if m := resultLine.FindStringSubmatch(line); m != nil {
		c.results = append(c.results, result{name: m[2], status: m[1], elapsed: m[3]})
		return
	}
	switch {
	case line == "PASS" || line == "FAIL":
		c.final = line
	case strings.HasPrefix(line, exitMarker):
		if n, err := strconv.Atoi(strings.TrimPrefix(line, exitMarker)); err == nil {
			c.exit, c.exited = n, true
		}
	}
}

// problems lists why the guest's run does not count as passed; none when it does. expected
// names the top-level tests that must have run (the test binary's -test.list).
func (c *console) problems(expected []string) []string {
	var out []string
	ran := map[string]bool{}
	for _, r := range c.results {
		if r.status != "PASS" {
			out = append(out, r.status+": "+r.name)
		}
		if !strings.Contains(r.name, "/") {
			ran[r.name] = true
		}
	}
	if len(ran) == 0 {
		out = append(out, "no test ran in the VM")
	}
	for _, name := range expected {
		if !ran[name] && len(ran) > 0 {
			out = append(out, "no result from "+name)
		}
	}
	if c.final != "PASS" {
		out = append(out, "no final PASS line from the VM's test binary")
	}
	switch {
	case !c.exited:
		out = append(out, "the VM's /init did not report the test binary's exit status")
	case c.exit != 0:
		out = append(out, "the VM's test binary exited with status "+strconv.Itoa(c.exit))
	}
	return out
}
