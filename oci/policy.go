package oci

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
)

// Kernel bounds, from sched(7) and kernel/sched/deadline.c. They are checked here so that a bad
// request fails in Create with a message naming the annotation, instead of as a bare EINVAL
// from runc init after the cgroup budget has already been granted.
const (
	MinRTPriority = 1
	MaxRTPriority = 99
	MinNice       = -20
	MaxNice       = 19
	// MinDeadlineRuntime is the smallest SCHED_DEADLINE runtime the kernel accepts
	// (1 << DL_SCALE ns); anything below is refused with EINVAL.
	MinDeadlineRuntime = 1024 * time.Nanosecond
)

// maxShown bounds how much of a user's value goes into an error message: annotations can be
// up to 256 KiB, and an error that size would drown kubectl describe and the shim's log.
const maxShown = 64

// parsePolicy parses a scheduling policy name the way users write it: case-insensitive, with
// the "SCHED_" prefix optional ("fifo", "Sched_rr", "SCHED_DEADLINE").
func parsePolicy(s string) (Policy, bool) {
	s = trim(s)
	if len(s) > len("SCHED_DEADLINE") {
		// Longer than any name: skip copying a possibly huge string.
		return "", false
	}
	u, ok := upperASCII(s)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(u, "SCHED_") {
		u = "SCHED_" + u
	}
	for _, p := range Policies {
		if string(p) == u {
			return p, true
		}
	}
	return "", false
}

func policyHelp() string {
	names := make([]string, len(Policies))
	for i, p := range Policies {
		names[i] = string(p)
	}
	return "must be one of " + strings.Join(names, ", ") + " (case-insensitive, SCHED_ prefix optional)"
}

// trim drops surrounding ASCII white space, which YAML block scalars and hand-edited
// manifests easily add; any other stray character stays and makes the value an error.
func trim(s string) string { return strings.Trim(s, " \t\r\n") }

// upperASCII upper-cases s if it is plain ASCII. strings.ToUpper and strings.EqualFold follow
// Unicode case rules, under which "fıfo" (dotless i) is FIFO and "falſe" (long s) is false:
// such lookalikes must be errors, not accepted.
func upperASCII(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= utf8.RuneSelf:
			return "", false
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), true
}

// oneOf returns the name (one of the lower-case names) that s spells, ignoring ASCII case and
// surrounding white space, so that "Apply" written by hand in a manifest is not a surprise
// error while "aply" still is one.
func oneOf(s string, names ...string) (string, bool) {
	s = trim(s)
	for _, n := range names {
		if len(s) == len(n) {
			if u, ok := upperASCII(s); ok && u == strings.ToUpper(n) {
				return n, true
			}
		}
	}
	return "", false
}

func parseMode(s string) (Mode, bool) {
	m, ok := oneOf(s, string(ModeApply), string(ModeGrant))
	return Mode(m), ok
}

func parseQuota(s string) (QuotaMode, bool) {
	q, ok := oneOf(s, string(QuotaDisable), string(QuotaKeep))
	return QuotaMode(q), ok
}

// parseBool accepts exactly "true" or "false" (any case): strconv.ParseBool would also take
// "1", "t" and "F", which makes a typo like "f" silently mean something.
func parseBool(s string) (bool, bool) {
	b, ok := oneOf(s, "true", "false")
	return b == "true", ok
}

// parseInt parses a base-10 integer within [lo, hi].
func parseInt(s string, lo, hi int64) (int64, bool) {
	n, err := strconv.ParseInt(trim(s), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

const deadlineForm = `write "runtime=<duration>,deadline=<duration>,period=<duration>", e.g. "runtime=500us,deadline=1ms,period=1ms"`

// parseDeadline parses SCHED_DEADLINE parameters written as
// "runtime=<dur>,deadline=<dur>,period=<dur>" with Go durations ("500us", "1ms"), in any
// order. All three are required and runtime >= 1024ns, runtime <= deadline <= period must hold
// (the kernel's own rules), so that the request fails here rather than in sched_setattr.
// The period's host limits (sysctls kernel.sched_deadline_period_{min,max}_us, 100us and
// ~4.19s by default) are not checked: they are the host's, known only at run time.
// It returns the parameters or the reason they are wrong.
func parseDeadline(s string) (Deadline, string) {
	var d Deadline
	seen := map[string]bool{}
	// At most 4 parts: a fourth is an error anyway, and a huge value is not split up.
	for _, part := range strings.SplitN(s, ",", 4) {
		raw, val, ok := strings.Cut(part, "=")
		name, _ := oneOf(raw, "runtime", "deadline", "period")
		if !ok {
			return Deadline{}, fmt.Sprintf("%s is not name=duration: %s", quote(part), deadlineForm)
		}
		var dst *time.Duration
		switch name {
		case "runtime":
			dst = &d.Runtime
		case "deadline":
			dst = &d.Deadline
		case "period":
			dst = &d.Period
		default:
			return Deadline{}, fmt.Sprintf("unknown parameter %s: %s", quote(trim(raw)), deadlineForm)
		}
		if seen[name] {
			return Deadline{}, fmt.Sprintf("%s given twice", name)
		}
		seen[name] = true
		v, err := time.ParseDuration(trim(val))
		if err != nil || v <= 0 {
			return Deadline{}, fmt.Sprintf("%s=%s is not a positive duration like 500us or 1ms", name, quote(val))
		}
		*dst = v
	}
	for _, name := range []string{"runtime", "deadline", "period"} {
		if !seen[name] {
			return Deadline{}, fmt.Sprintf("%s is missing: %s", name, deadlineForm)
		}
	}
	return d, checkDeadline(d)
}

// checkDeadline applies the kernel's rules (__checkparam_dl) to complete parameters.
func checkDeadline(d Deadline) string {
	switch {
	case d.Runtime < MinDeadlineRuntime:
		return fmt.Sprintf("runtime %v is below the kernel minimum of %v", d.Runtime, MinDeadlineRuntime)
	case d.Runtime > d.Deadline:
		return fmt.Sprintf("runtime %v exceeds deadline %v: runtime <= deadline <= period must hold", d.Runtime, d.Deadline)
	case d.Deadline > d.Period:
		return fmt.Sprintf("deadline %v exceeds period %v: runtime <= deadline <= period must hold", d.Deadline, d.Period)
	}
	return ""
}

// deadlineBudgetUS is the cgroup v1 RT runtime, per periodUS, that a SCHED_DEADLINE task with
// d needs: ceil(runtime/period * periodUS). Done in 128-bit arithmetic because runtime (ns)
// times periodUS overflows int64 for runtimes above ~9s.
func deadlineBudgetUS(d Deadline, periodUS int64) int64 {
	if d.Runtime <= 0 || d.Period <= 0 || periodUS <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d.Runtime), uint64(periodUS))
	if hi >= uint64(d.Period) {
		// The quotient would not fit in 64 bits (bits.Div64 panics then).
		return math.MaxInt64
	}
	q, rem := bits.Div64(hi, lo, uint64(d.Period))
	if q >= math.MaxInt64 {
		return math.MaxInt64
	}
	if rem != 0 {
		q++
	}
	return int64(q)
}

// quote renders a user's value for an error message: Go-quoted (so control characters and
// invalid UTF-8 are visible) and cut to maxShown bytes on a rune boundary.
func quote(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// showKey renders a key as the user wrote it: bare when it is plain printable ASCII (all the
// known keys), quoted like a value otherwise, so a hostile key cannot forge log lines.
func showKey(k string) string {
	if len(k) > maxShown {
		return quote(k)
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' || k[i] == '"' {
			return quote(k)
		}
	}
	return k
}

// invalid builds every request error: the errdefs class for errgrpc, then key=value and
// what is allowed, so the message in kubectl describe is enough to fix the manifest.
func invalid(key, value, format string, args ...any) error {
	return fmt.Errorf("%w: %s=%s: %s", errdefs.ErrInvalidArgument, showKey(key), quote(value),
		fmt.Sprintf(format, args...))
}

// invalidConfig is the error of rules that do not validate.
func invalidConfig(problems string) error {
	return fmt.Errorf("%w: rtshim config: %s", errdefs.ErrInvalidArgument, problems)
}

// Quote renders an untrusted value for an error message the way every rtshim error does.
func Quote(s string) string { return quote(s) }

// ShowKey renders an untrusted key for an error message the way every rtshim error does.
func ShowKey(k string) string { return showKey(k) }
