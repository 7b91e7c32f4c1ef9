package oci

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Policy // "" means error
	}{
		{"SCHED_FIFO", PolicyFIFO}, {"fifo", PolicyFIFO}, {"Sched_rr", PolicyRR}, {"RR", PolicyRR},
		{"other", PolicyOther}, {"sched_batch", PolicyBatch}, {"IDLE", PolicyIdle},
		{"SCHED_DEADLINE", PolicyDeadline}, {" deadline\t", PolicyDeadline},
		{"", ""}, {"SCHED_", ""}, {"SCHED_FOO", ""}, {"SCHED_ISO", ""}, {"sched fifo", ""},
		{"SCHED_SCHED_FIFO", ""}, {"fıfo", ""}, {"ſched_rr", ""}, {"FIFO\x00", ""},
		{"\u00a0fifo", ""}, {strings.Repeat("fifo", 1000), ""},
	} {
		got, err := parsePolicyErr(tc.in)
		if tc.want == "" {
			if err == nil || !errdefs.IsInvalidArgument(err) {
				t.Errorf("parsePolicyErr(%q) = %q, %v; want InvalidArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parsePolicyErr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDeadline(t *testing.T) {
	us, ms := time.Microsecond, time.Millisecond
	for _, tc := range []struct {
		in   string
		want Deadline
		err  string
	}{
		{in: "runtime=500us,deadline=1ms,period=1ms", want: Deadline{500 * us, ms, ms}},
		{in: "period=10ms,deadline=5ms,runtime=1ms", want: Deadline{ms, 5 * ms, 10 * ms}},
		{in: " Runtime = 1024ns , DEADLINE=1024ns,period=1024ns ", want: Deadline{1024, 1024, 1024}},
		{in: "runtime=1.5ms,deadline=2ms,period=1s", want: Deadline{1500 * us, 2 * ms, time.Second}},
		{in: "runtime=100µs,deadline=1ms,period=1ms", want: Deadline{100 * us, ms, ms}},
		{in: "", err: `"" is not name=duration`},
		{in: "runtime=1ms", err: "deadline is missing"},
		{in: "runtime=1ms,deadline=1ms", err: "period is missing"},
		{in: "runtime=1ms,deadline=1ms,period=1ms,runtime=1ms", err: "runtime given twice"},
		{in: "runtime=1ms,runtime=1ms,period=1ms", err: "runtime given twice"},
		{in: "runtime=1ms,deadline=1ms,period=1ms,", err: "is not name=duration"},
		{in: "runtime=1ms,deadline=1ms,slack=1ms", err: `unknown parameter "slack"`},
		{in: "runtime=1,deadline=1ms,period=1ms", err: `runtime="1" is not a positive duration`},
		{in: "runtime=0s,deadline=1ms,period=1ms", err: "not a positive duration"},
		{in: "runtime=-1ms,deadline=1ms,period=1ms", err: "not a positive duration"},
		{in: "runtime=99999999h,deadline=1ms,period=1ms", err: "not a positive duration"},
		{in: "runtime=1023ns,deadline=1ms,period=1ms", err: "below the kernel minimum"},
		{in: "runtime=2ms,deadline=1ms,period=3ms", err: "runtime 2ms exceeds deadline 1ms"},
		{in: "runtime=1ms,deadline=3ms,period=2ms", err: "deadline 3ms exceeds period 2ms"},
		{in: "runtime=1ms deadline=1ms period=1ms", err: "not a positive duration"},
	} {
		got, err := parseDeadlineErr(tc.in)
		if tc.err != "" {
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseDeadlineErr(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDeadlineErr(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestDeadlineBudgetUS(t *testing.T) {
	for _, tc := range []struct {
		d        Deadline
		periodUS int64
		want     int64
	}{
		{Deadline{500 * time.Microsecond, time.Millisecond, time.Millisecond}, 1000000, 500000},
		{Deadline{1, 3, 3}, 1000000, 333334}, // rounded up: a budget just short is useless
		{Deadline{time.Hour, time.Hour, 2 * time.Hour}, 1000000, 500000},
		{Deadline{math.MaxInt64, math.MaxInt64, math.MaxInt64}, 1000000, 1000000},
		{Deadline{1024, 1024, math.MaxInt64}, 1000000, 1},
		{Deadline{0, 1, 1}, 1000000, 0},
		{Deadline{1, 1, 1}, -5, 0},
		{Deadline{2, 1, 1}, math.MaxInt64, math.MaxInt64}, // quotient overflow is saturated
	} {
		if got := deadlineBudgetUS(tc.d, tc.periodUS); got != tc.want {
			t.Errorf("deadlineBudgetUS(%v, %d) = %d, want %d", tc.d, tc.periodUS, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"fifo", `"fifo"`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 65), `"` + strings.Repeat("a", 64) + `"...(65 bytes)`},
		// The cut never splits a rune: 63 'a' then a 2-byte rune is cut before the rune.
		{strings.Repeat("a", 63) + "éé", `"` + strings.Repeat("a", 63) + `"...(67 bytes)`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestShowKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{KeyPolicy, KeyPolicy},
		{"RTSHIM_POLICY", "RTSHIM_POLICY"},
		{"rtshim.io/a b", `"rtshim.io/a b"`},
		{"rtshim.io/\x1b[31m", `"rtshim.io/\x1b[31m"`},
		{`rtshim.io/"`, `"rtshim.io/\""`},
	} {
		if got := showKey(tc.in); got != tc.want {
			t.Errorf("showKey(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	want := []string{"RTSHIM_POLICY", "RTSHIM_PRIORITY", "RTSHIM_NICE", "RTSHIM_DEADLINE", "RTSHIM_RESET_ON_FORK",
		"RTSHIM_MODE", "RTSHIM_RT_RUNTIME_US", "RTSHIM_CPU_QUOTA", "RTSHIM_EXEC_POLICY"}
	for i, k := range EnvKeys {
		if got := EnvName(k); got != want[i] {
			t.Errorf("EnvName(%s) = %s, want %s", k, got, want[i])
		}
	}
}

func TestParseBoolModeQuota(t *testing.T) {
	for _, tc := range []struct {
		in     string
		b, bOK bool
		mode   Mode
		quota  QuotaMode
	}{
		{in: "true", b: true, bOK: true}, {in: "FALSE", bOK: true}, {in: " True ", b: true, bOK: true},
		{in: "1"}, {in: "t"}, {in: "yes"}, {in: ""}, {in: "truе"}, // Cyrillic е
		{in: "apply", mode: ModeApply}, {in: "GRANT", mode: ModeGrant}, {in: "keep", quota: QuotaKeep},
		{in: "Disable", quota: QuotaDisable}, {in: "\u212aeep"}, // Kelvin sign folds to k in Unicode
	} {
		if b, ok := parseBool(tc.in); b != tc.b || ok != tc.bOK {
			t.Errorf("parseBool(%q) = %v, %v", tc.in, b, ok)
		}
		if m, ok := parseMode(tc.in); m != tc.mode || ok != (tc.mode != "") {
			t.Errorf("parseMode(%q) = %q, %v", tc.in, m, ok)
		}
		if q, ok := parseQuota(tc.in); q != tc.quota || ok != (tc.quota != "") {
			t.Errorf("parseQuota(%q) = %q, %v", tc.in, q, ok)
		}
	}
}

// parsePolicyErr and parseDeadlineErr put the parsers in the (value, error) form the tables and
// fuzz targets check, with the error every caller builds from a refusal.
func parsePolicyErr(s string) (Policy, error) {
	p, ok := parsePolicy(s)
	if !ok {
		return "", invalid("policy", s, "%s", policyHelp())
	}
	return p, nil
}

func parseDeadlineErr(s string) (Deadline, error) {
	d, reason := parseDeadline(s)
	if reason != "" {
		return Deadline{}, invalid("deadline", s, "%s", reason)
	}
	return d, nil
}
