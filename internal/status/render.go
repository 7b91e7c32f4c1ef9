package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/rtshim/rtshim/oci"
)

// WriteJSON writes the report as one JSON object (see docs/doctor.md for its shape).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes one line per container, then notes for what needs attention.
func (r Report) WriteText(w io.Writer) error {
	if p := r.Pods; p != nil {
		fmt.Fprintf(w, "Kubernetes pods (below %s): %d units of %s allocatable: %d µs per second free for a new pod, "+
			"%d µs held by allocated containers\n\n", p.Kubepods, p.Units, oci.ResourceRTBandwidth, p.FreeUS, p.AllocatedUS)
	}
	if len(r.CorruptClaims) > 0 {
		fmt.Fprintf(w, "corrupt claim records (kept, with whatever they hold, until removed by hand once the container is "+
			"known to be gone): %s\n\n", strings.Join(r.CorruptClaims, " "))
	}
	if len(r.Containers) == 0 && !r.StateDirExists {
		_, err := fmt.Fprintf(w, "no real-time containers (%s does not exist yet: no RT container has run since boot "+
			"with this state_dir)\n", r.StateDir)
		return err
	}
	if len(r.Containers) == 0 {
		if _, err := fmt.Fprintf(w, "no real-time containers (no claims in %s)\n", r.StateDir); err != nil {
			return err
		}
		return r.writeTuned(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tID\tPIDS\tPOLICY\tRT BUDGET (µs)\tCPU QUOTA\tPOD QUOTA\tSHIM")
	gone, stale := false, false
	var orphans []Container
	for _, c := range r.Containers {
		pids, policy := strconv.Itoa(len(c.Processes)), c.PolicySummary()
		if !c.CgroupExists {
			pids, policy, stale = "-", "cgroup gone", true
		}
		shim := fmt.Sprintf("alive (pid %d)", c.Shim.PID)
		switch {
		case c.Orphan:
			shim = fmt.Sprintf("gone (pid %d), ORPHANED", c.Shim.PID)
			orphans = append(orphans, c)
		case !c.Shim.Alive:
			shim, gone = fmt.Sprintf("gone (pid %d)", c.Shim.PID), true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Namespace, c.ID, pids, policy,
			budget(c.Budget), orDash(c.Quota), orDash(c.PodQuota), shim)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.CgroupError != "" {
		fmt.Fprintf(w, "\ncgroups not read: %s\n", r.CgroupError)
	}
	for _, c := range orphans {
		fmt.Fprintf(w, "\n%s/%s is orphaned: its shim is gone, but %d process(es) still run in %s and hold its budget, "+
			"and nothing else will give it back. Once its engine no longer knows it: rtshim reap %s %s\n",
			c.Namespace, c.ID, len(c.Processes), c.Cgroup, shellQuote(c.Namespace), shellQuote(c.ID))
	}
	if gone || stale {
		fmt.Fprintln(w, "\nA claim whose shim is gone and whose cgroup holds no process is released by the next RT "+
			"container's Create or Delete on this host (or by containerd-shim-rt-v2 delete).")
	}
	return r.writeTuned(w)
}

func budget(b *Budget) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", b.RuntimeUS, b.PeriodUS)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shellQuote quotes s for a command line to paste when it has anything a shell would touch.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
