package status

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/rtshim/rtshim/rtcontainer"
	"github.com/rtshim/rtshim/tuning"
)

// Tuned is one container's host tuning (package tuning's holder) as rtshim status lists it.
type Tuned struct {
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	CPUs      string `json:"cpus"`
	Exclusive bool   `json:"exclusive"`
	// Tuning is every knob in a few words ("cpus=2 exclusive irqs=disable resume_latency=n/a").
	Tuning string `json:"tuning"`
	Cgroup string `json:"cgroup,omitempty"`
	Shim   Shim   `json:"shim"`
	// Applied: the host is tuned for it; Stale: its shim and its container are gone, and the next
	// container lifecycle on the host gives its tuning back.
	Applied bool `json:"applied"`
	Stale   bool `json:"stale,omitempty"`
}

// tuned lists the tuning holders of the state dir; an error is put in the report, not returned.
func tuned(h Host, r *Report) {
	if !tuning.HasRecords(h.StateDir) {
		return
	}
	m, err := rtcontainer.Host{ProcRoot: h.ProcRoot}.Tuner(h.StateDir)
	if err != nil {
		r.TuningError = err.Error()
		return
	}
	holders, err := m.Holders()
	if err != nil {
		r.TuningError = err.Error()
	}
	for _, o := range holders {
		r.Tuned = append(r.Tuned, Tuned{Namespace: o.Namespace, ID: o.ID, CPUs: o.Tuning.CPUs, Exclusive: o.Tuning.Exclusive,
			Tuning: o.Tuning.String(), Cgroup: o.Leaf, Shim: Shim{PID: o.Owner.PID, Alive: o.Owner.Alive(h.ProcRoot)},
			Applied: o.Applied && !o.Releasing, Stale: m.Stale(o)})
	}
	sort.Slice(r.Tuned, func(i, j int) bool {
		a, b := r.Tuned[i], r.Tuned[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.ID < b.ID
	})
}

func (r Report) writeTuned(w io.Writer) error {
	if len(r.Tuned) == 0 && r.TuningError == "" {
		return nil
	}
	fmt.Fprintln(w, "\nhost tuning:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tID\tTUNING\tCGROUP\tSTATE\tSHIM")
	for _, c := range r.Tuned {
		state := "reserved"
		switch {
		case c.Stale:
			state = "stale (given back by the next lifecycle)"
		case c.Applied:
			state = "applied"
		}
		shim := fmt.Sprintf("alive (pid %d)", c.Shim.PID)
		if !c.Shim.Alive {
			shim = fmt.Sprintf("gone (pid %d)", c.Shim.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Namespace, c.ID, c.Tuning, orDash(c.Cgroup), state, shim)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.TuningError != "" {
		fmt.Fprintf(w, "tuning records not read: %s\n", r.TuningError)
	}
	return nil
}
