package cgroupfix

import (
	"net/url"
	"os"
	"path/filepath"

	"github.com/rtshim/rtshim/internal/statefile"
)

// childSums is what a cgroup's children hold, added up as the cgroup's need is computed
// (childrenNeed): their runtimes scaled to its period and the kernel's ratios.
//
// rtshim keeps one for every ancestor it holds raised, so that a grant or release adds or
// takes away its own container's part instead of reading every sibling's budget under the
// host-wide lock: with hundreds of containers in one parent that read is what made each
// create and delete cost more the more containers ran. A record counts only while the cgroup
// still holds what rtshim wrote there (Held, Period); anything else (an operator's write, a
// record that is gone or corrupt) makes the next grant or release read the children again.
// Changes to siblings from outside rtshim do not show in the record: one that takes budget
// can only be made within room the cgroup has (the kernel refuses the rest), and a write
// planned from a record the kernel refuses is planned again from the children; one that
// gives budget back leaves the cgroup holding more than needed until the next sweep counts
// the children again (Manager.recount) and the next release lowers it.
type childSums struct {
	Cgroup  string `json:"cgroup"`
	Runtime int64  `json:"runtime"` // µs per Period
	Ratio   int64  `json:"ratio"`
	Period  int64  `json:"period"`
	Held    int64  `json:"held"` // the cgroup's cpu.rt_runtime_us when recorded
}

// add counts child group g (sign 1) or takes it away (sign -1), as childrenNeed counts it.
func (s *childSums) add(g group, sign int64) {
	s.Ratio += sign * g.ratio()
	switch {
	case g.runtime < 0:
		s.Runtime += sign * s.Period
	case g.period == s.Period:
		s.Runtime += sign * g.runtime
	case g.period > 0:
		s.Runtime += sign * ((g.runtime*s.Period + g.period - 1) / g.period)
	}
}

// need is the runtime the cgroup needs for its children to fit: their runtimes summed, and
// never less than the kernel's ratio check requires.
func (s childSums) need() int64 {
	return max(s.Runtime, runtimeFor(s.Ratio, s.Period), 0)
}

// counts says whether the record still describes cgroup cur.
func (s *childSums) counts(cur group) bool {
	return s != nil && s.Held == cur.runtime && s.Period == cur.period
}

func (s State) sumsPath(cg string) string {
	return filepath.Join(s.Dir, "sums", url.PathEscape(cg)+".json")
}

// loadSums returns nil when there is no usable record of cg.
func (s State) loadSums(cg string) *childSums {
	var r childSums
	if ok, err := statefile.ReadJSON(s.sumsPath(cg), &r); !ok || err != nil || r.Cgroup != cg {
		return nil
	}
	return &r
}

// saveSums replaces cg's record. It removes the old record first rather than renaming the new
// one over it: ext4 (auto_da_alloc) writes a file's data out to disk when it replaces another
// by rename, which made this one write 0.3–0.4 ms of every grant and release. A record that
// is missing for a moment (or for good, after a crash in between) only makes the next grant
// or release read the children, and all of them read records under the host-wide lock.
func (s State) saveSums(r childSums) error {
	p := s.sumsPath(r.Cgroup)
	if err := statefile.Remove(p); err != nil {
		return err
	}
	return statefile.WriteJSON(p, &r)
}

func (s State) deleteSums(cg string) error { return statefile.Remove(s.sumsPath(cg)) }

// hasSums tells whether the sums directory holds any file.
func (s State) hasSums() bool {
	ents, _ := os.ReadDir(filepath.Join(s.Dir, "sums"))
	return len(ents) > 0
}

// allSums lists the records; unreadable ones are removed (the next grant or release reads
// the children instead).
func (s State) allSums() []childSums {
	dir := filepath.Join(s.Dir, "sums")
	ents, _ := os.ReadDir(dir)
	var out []childSums
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var r childSums
		if ok, err := statefile.ReadJSON(p, &r); !ok || err != nil || s.sumsPath(r.Cgroup) != p {
			_ = os.Remove(p)
			continue
		}
		out = append(out, r)
	}
	return out
}
