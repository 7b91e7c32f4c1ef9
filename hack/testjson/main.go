// Command testjson reads `go test -json` on stdin, prints the tests' output as `go test -v`
// does, and fails (exit status 1) if a test failed, a test or subtest was skipped, a test did
// not finish, a package failed, or no test ran at all. The make targets of the tiers that must
// run every check as root (integration, test-compat, test-v2, bench) use it: there a skip
// reported as passing would be a defect, and counting test2json's events is exact where
// grepping -v output is not (a test may print "--- SKIP" itself).
//
//	go test -json -v ./integration/ 2>&1 | go run ./hack/testjson -log _output/integration.log
//
// Lines that are not JSON (a build error on stderr) are printed as they are. A passing
// benchmark has a "run" event and no result of its own: it passed if its package did.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() { os.Exit(run()) }

// run is main, returning the exit status once the log is closed.
func run() int {
	logPath := flag.String("log", "", "also write the output to this file")
	countsPath := flag.String("counts", "", `write "<passed> <failed> <skipped> <subtests>" (top-level tests, then subtests of any result) to this file`)
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	var out io.Writer = os.Stdout
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testjson: %v\n", err)
			return 2
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	s, err := read(os.Stdin, out)
	if err != nil {
		fmt.Fprintf(out, "testjson: read go test -json: %v\n", err)
		return 1
	}
	fmt.Fprintln(out, s.verdict())
	if *countsPath != "" {
		c := s.counts()
		line := fmt.Sprintf("%d %d %d %d\n", c.passed, c.failed, c.skipped, c.subtests)
		if err := os.WriteFile(*countsPath, []byte(line), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "testjson: %v\n", err)
			return 1
		}
	}
	if !s.ok() {
		return 1
	}
	return 0
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// summary is what a stream said about its tests, by "<package> <test>".
type summary struct {
	order    []string          // tests in the order they started
	result   map[string]string // "pass", "fail", "skip"; none yet: running
	packages map[string]string // package → "pass" or "fail"
}

// read prints every output event (and every line that is not an event) to out and collects
// the results.
func read(r io.Reader, out io.Writer) (*summary, error) {
	s := &summary{result: map[string]string{}, packages: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output", "build-output":
			fmt.Fprint(out, e.Output)
		case "run":
			if _, seen := s.result[key]; !seen {
				s.order = append(s.order, key)
				s.result[key] = ""
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				s.packages[e.Package] = e.Action
			} else {
				s.result[key] = e.Action
			}
		case "build-fail":
			s.packages[e.Package] = "fail"
		}
	}
	return s, sc.Err()
}

// finalResult is a test's result, once its package has ended: a test with none passed if its
// package passed (a benchmark), else it did not finish (a panic, a timeout).
func (s *summary) finalResult(key string) string {
	if r := s.result[key]; r != "" {
		return r
	}
	pkg, _, _ := strings.Cut(key, " ")
	if s.packages[pkg] == "pass" {
		return "pass"
	}
	return "unfinished"
}

type counts struct {
	passed, failed, skipped, subtests int
	bad                               map[string][]string // result → tests, for failed, skipped, unfinished
}

func (s *summary) counts() counts {
	c := counts{bad: map[string][]string{}}
	for _, key := range s.order {
		r := s.finalResult(key)
		_, name, _ := strings.Cut(key, " ")
		if r != "pass" {
			c.bad[r] = append(c.bad[r], name)
		}
		if strings.Contains(name, "/") {
			c.subtests++
			continue
		}
		switch r {
		case "pass":
			c.passed++
		case "skip":
			c.skipped++
		default:
			c.failed++
		}
	}
	return c
}

func (s *summary) failedPackages() []string {
	var out []string
	for p, r := range s.packages {
		if r != "pass" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (s *summary) ok() bool {
	c := s.counts()
	return len(c.bad) == 0 && c.passed > 0 && len(s.failedPackages()) == 0
}

// verdict is the summary's last line.
func (s *summary) verdict() string {
	c := s.counts()
	head := fmt.Sprintf("testjson: %d tests passed, %d failed, %d skipped; %d subtests", c.passed, c.failed, c.skipped, c.subtests)
	if s.ok() {
		return head + ": PASS"
	}
	var why []string
	for _, r := range []string{"fail", "unfinished", "skip"} {
		if names := c.bad[r]; len(names) > 0 {
			why = append(why, fmt.Sprintf("%s: %s", map[string]string{"fail": "failed", "unfinished": "did not finish",
				"skip": "skipped (every test must run here; the reasons are above)"}[r], strings.Join(names, " ")))
		}
	}
	if p := s.failedPackages(); len(p) > 0 {
		why = append(why, "package failed or has no tests: "+strings.Join(p, " "))
	}
	if len(s.order) == 0 {
		why = append(why, "no test ran")
	}
	return head + ": FAIL\n  " + strings.Join(why, "\n  ")
}
