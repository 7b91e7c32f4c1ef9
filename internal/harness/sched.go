package harness

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Sched is one line of /bin/schedinfo's output (integration/testdata/schedinfo.c) as a map:
// policy, priority, nice, reset_on_fork, runtime_ns, deadline_ns, period_ns.
type Sched map[string]string

// ParseSched returns the first "policy=..." line of out, failing the test if there is none.
func ParseSched(t testing.TB, out string) Sched {
	t.Helper()
	s, err := ParseSchedOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ParseSchedOutput is ParseSched returning the error, for callers that fail in their own way.
func ParseSchedOutput(out string) (Sched, error) {
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "policy=") {
			continue
		}
		s := Sched{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			s[k] = v
		}
		return s, nil
	}
	return nil, fmt.Errorf("no policy line in output:\n%s", out)
}

// CapSysNice is CAP_SYS_NICE's bit in a capability set.
const CapSysNice = 23

// CapEff reads schedinfo's "capeff=<hex>" line (schedinfo -caps), failing the test if there
// is none.
func CapEff(t testing.TB, out string) uint64 {
	t.Helper()
	for line := range strings.Lines(out) {
		if hex, ok := strings.CutPrefix(strings.TrimSpace(line), "capeff="); ok {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				t.Fatalf("capeff %q: %v", hex, err)
			}
			return v
		}
	}
	t.Fatalf("no capeff line in:\n%s", out)
	return 0
}

// HasCap reports whether schedinfo's effective capabilities include bit.
func HasCap(t testing.TB, out string, bit uint) bool {
	t.Helper()
	return CapEff(t, out)&(1<<bit) != 0
}

// PolicyName names a scheduling policy number as sched_getattr reports it.
func PolicyName(p uint32) string {
	if name, ok := map[uint32]string{0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH", 5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}[p]; ok {
		return name
	}
	return fmt.Sprint(p)
}
