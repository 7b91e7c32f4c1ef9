package doctor

import (
	"fmt"
	"strings"

	"github.com/rtshim/rtshim/internal/status"
)

// orphans reports containers whose shim is gone while their processes still run and hold their
// budget: nothing gives that budget back on its own (see rtshim reap).
func (e *env) orphans() Finding {
	f := Finding{ID: "rtshim.orphans", Title: "orphaned real-time containers"}
	f.Why = "When a shim is killed and so is the cleanup containerd runs for it, the container's processes keep " +
		"their policy and RT budget with no shim left to give them back."
	dir := e.config().StateDir
	r, err := status.List(status.Host{ProcRoot: e.h.ProcRoot, StateDir: dir, Sched: func(int) (status.Sched, error) {
		return status.Sched{}, nil // the policy does not matter here
	}})
	if err != nil {
		f.Severity, f.Saw = Info, fmt.Sprintf("cannot read the claims in %s: %v", dir, err)
		return f
	}
	var found, fix []string
	for _, c := range r.Containers {
		if c.Orphan {
			found = append(found, fmt.Sprintf("%s/%s (cgroup %s, %d processes, shim pid %d gone)", c.Namespace, c.ID, c.Cgroup, len(c.Processes), c.Shim.PID))
			fix = append(fix, fmt.Sprintf("rtshim reap %s %s", c.Namespace, c.ID))
		}
	}
	if len(r.CorruptClaims) > 0 {
		found = append(found, "corrupt claim records: "+strings.Join(r.CorruptClaims, " "))
		fix = append(fix, "inspect and remove the corrupt records once their containers are known to be gone")
	}
	if len(found) == 0 {
		f.Severity, f.Saw = OK, fmt.Sprintf("%d claims in %s, none orphaned", len(r.Containers), dir)
		return f
	}
	f.Severity, f.Saw, f.Fix = Warn, strings.Join(found, "; "), strings.Join(fix, "; ")
	return f
}
