package doctor

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rtshim/rtshim/internal/cpulist"
	"github.com/rtshim/rtshim/rtcontainer"
	"github.com/rtshim/rtshim/tuning"
)

// cpuTuning reports, per CPU, what containers tuned (exclusive or isolated, IRQs off, resume
// latency, governor) and by which container, and what is left to the host; a tuning whose
// shim and container are gone is a warning (the next lifecycle gives it back).
func (e *env) cpuTuning() Finding {
	f := Finding{ID: "cpu.tuning", Title: "CPUs tuned for containers"}
	f.Why = "Containers with rtshim.io/cpus or the tuning annotations change host-global settings of their CPUs while " +
		"they run; what no container holds is the host's, and must be enough for it."
	online, err := readTrim(filepath.Join(e.cpuDir(), "online"))
	cpus, perr := cpulist.Parse(online)
	if err != nil || perr != nil {
		f.Severity, f.Saw = Info, fmt.Sprintf("cannot read the online CPUs: %v %v", err, perr)
		return f
	}
	dir := e.config().StateDir
	var holders []*tuning.Holder
	var m *tuning.Manager
	if tuning.HasRecords(dir) {
		if m, err = (rtcontainer.Host{ProcRoot: e.h.ProcRoot, SysRoot: e.h.SysRoot}).Tuner(dir); err == nil {
			holders, err = m.Holders()
		}
		if err != nil {
			f.Severity, f.Saw = Warn, fmt.Sprintf("cannot read the tuning records in %s: %v", dir, err)
			f.Fix = "inspect the records in " + filepath.Join(dir, "tuning") + "; remove a corrupt one once its container is known to be gone"
			return f
		}
	}
	per := map[int][]string{}
	var stale []string
	for _, h := range holders {
		what := h.Tuning.String()
		what = strings.TrimPrefix(what, "cpus="+h.Tuning.CPUs+" ")
		if what == "cpus="+h.Tuning.CPUs {
			what = "tuned"
		}
		label := fmt.Sprintf("%s by %s/%s", what, h.Namespace, h.ID)
		if m.Stale(h) {
			label += " (stale: its shim and container are gone)"
			stale = append(stale, h.Namespace+"/"+h.ID)
		}
		for _, c := range h.Tuning.Set() {
			per[c] = append(per[c], label)
		}
	}
	var lines []string
	var free []int
	for _, c := range cpus {
		if len(per[c]) == 0 {
			free = append(free, c)
			continue
		}
		sort.Strings(per[c])
		lines = append(lines, fmt.Sprintf("CPU %d: %s", c, strings.Join(per[c], "; ")))
	}
	left := "every CPU"
	if len(free) < len(cpus) {
		left = "CPUs " + cpulist.Of(free...).String()
	}
	lines = append(lines, left+" left to the host")
	f.Saw = strings.Join(lines, "; ")
	switch {
	case len(stale) > 0:
		f.Severity = Warn
		f.Fix = "the next container created or deleted on this host gives back the tuning of " + strings.Join(stale, ", ") +
			" (or: rtshim reap NAMESPACE ID)"
	case len(free) == 0:
		f.Severity = Fail
		f.Fix = "no CPU is left to the host: stop a tuned container, and leave host CPUs out of limits.tunable_cpus"
	case len(holders) == 0:
		f.Severity = Info
	default:
		f.Severity = OK
	}
	return f
}
