package main

import (
	"strings"
	"testing"
)

// stream builds a go test -json stream: each line is "<action> <test> [output]".
func stream(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		switch {
		case len(f) == 1:
			b.WriteString(`{"Action":"` + f[0] + `","Package":"p"}` + "\n")
		case f[0] == "output":
			b.WriteString(`{"Action":"output","Package":"p","Test":"` + f[1] + `","Output":"` + f[2] + `\n"}` + "\n")
		default:
			b.WriteString(`{"Action":"` + f[0] + `","Package":"p","Test":"` + f[1] + `"}` + "\n")
		}
	}
	return b.String()
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		ok     bool
		counts [4]int // passed failed skipped subtests
		says   []string
	}{
		{"all pass", stream("start", "run TestA", "output TestA --- PASS: TestA", "pass TestA", "run TestB", "run TestB/x", "pass TestB/x", "pass TestB", "pass"),
			true, [4]int{2, 0, 0, 1}, []string{"2 tests passed", "PASS"}},
		{"a failure", stream("run TestA", "fail TestA", "run TestB", "pass TestB", "fail"),
			false, [4]int{1, 1, 0, 0}, []string{"failed: TestA", "package failed"}},
		{"a skipped subtest", stream("run TestA", "run TestA/x", "skip TestA/x", "pass TestA", "pass"),
			false, [4]int{1, 0, 0, 1}, []string{"skipped", "TestA/x"}},
		{"a skipped test", stream("run TestA", "skip TestA", "pass"),
			false, [4]int{0, 0, 1, 0}, []string{"skipped", "TestA"}},
		{"nothing ran", stream("start", "pass"), false, [4]int{}, []string{"no test ran"}},
		{"benchmarks", stream("run BenchmarkA", "output BenchmarkA BenchmarkA-2 1 5 ns/op", "run BenchmarkB", "pass"),
			true, [4]int{2, 0, 0, 0}, []string{"2 tests passed"}},
		{"panic", stream("run TestA", "fail"), false, [4]int{0, 1, 0, 0}, []string{"did not finish: TestA"}},
		{"build error", "# p\n./x.go:1: syntax error\n" + stream("fail"), false, [4]int{}, []string{"no test ran", "package failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			s, err := read(strings.NewReader(tc.in), &out)
			if err != nil {
				t.Fatal(err)
			}
			c := s.counts()
			if got := [4]int{c.passed, c.failed, c.skipped, c.subtests}; got != tc.counts {
				t.Errorf("counts %v, want %v", got, tc.counts)
			}
			v := s.verdict()
			if s.ok() != tc.ok {
				t.Errorf("ok = %v, want %v: %s", s.ok(), tc.ok, v)
			}
			for _, w := range tc.says {
				if !strings.Contains(v, w) {
					t.Errorf("verdict does not say %q:\n%s", w, v)
				}
			}
		})
	}
	var out strings.Builder
	if _, err := read(strings.NewReader("# p\n"+stream("run TestA", "output TestA hello", "pass TestA")), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "# p\nhello\n" {
		t.Errorf("output %q, want the non-JSON line and the test's output", out.String())
	}
}
