//go:build linux

package vmtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func parse(out string) *console {
	var c console
	for line := range strings.Lines(out) {
		c.feed(clean(strings.TrimSuffix(line, "\n")))
	}
	return &c
}

func TestConsole(t *testing.T) {
	const pass = "\x1bc\x1b[?7l[    1.234] Run /init as init process\r\n" +
		"=== RUN   TestV2Kernel\r\n" +
		"--- PASS: TestV2Kernel (0.01s)\r\n" +
		"=== RUN   TestV2Quota\r\n" +
		"=== RUN   TestV2Quota/rt\r\n" +
		"    --- PASS: TestV2Quota/rt (3.20s)\r\n" +
		"--- PASS: TestV2Quota (3.21s)\r\n" +
		"PASS\r\n" +
		"rtshim-vm: exit status 0\r\n" +
		"[   40.000] reboot: Power down\r\n"
	for _, tc := range []struct {
		name, out string
		problems  []string
	}{
		{"pass", pass, nil},
		{"subtest failed", strings.Replace(pass, "--- PASS: TestV2Quota/rt", "--- FAIL: TestV2Quota/rt", 1),
			[]string{"FAIL: TestV2Quota/rt"}},
		{"skipped", strings.Replace(pass, "--- PASS: TestV2Kernel", "--- SKIP: TestV2Kernel", 1),
			[]string{"SKIP: TestV2Kernel"}},
		{"cut off (timeout, panic)", cutAt(pass, "--- PASS: TestV2Quota ("),
			[]string{"no result from TestV2Quota", "no final PASS line from the VM's test binary",
				"the VM's /init did not report the test binary's exit status"}},
		{"exit status", strings.Replace(pass, "exit status 0", "exit status 1", 1),
			[]string{"the VM's test binary exited with status 1"}},
		{"nothing ran", "PASS\nrtshim-vm: exit status 0\n", []string{"no test ran in the VM"}},
		{"a test missing", strings.Replace(pass, "--- PASS: TestV2Kernel (0.01s)", "", 1), []string{"no result from TestV2Kernel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(tc.out)
			if got := c.problems([]string{"TestV2Kernel", "TestV2Quota"}); !slices.Equal(got, tc.problems) {
				t.Errorf("problems %q, want %q", got, tc.problems)
			}
		})
	}
	if got := clean("\x1bc\x1b[?7lSeaBIOS (version 1.16.2)\r"); got != "SeaBIOS (version 1.16.2)" {
		t.Errorf("clean: %q", got)
	}
	c := parse(pass)
	want := []result{{"TestV2Kernel", "PASS", "0.01s"}, {"TestV2Quota/rt", "PASS", "3.20s"}, {"TestV2Quota", "PASS", "3.21s"}}
	if !slices.Equal(c.results, want) {
		t.Errorf("results %v, want %v", c.results, want)
	}
}

// cutAt is s up to the first sep, which must be there.
func cutAt(s, sep string) string {
	before, _, found := strings.Cut(s, sep)
	if !found {
		panic(fmt.Sprintf("%q not in the test console", sep))
	}
	return before
}
