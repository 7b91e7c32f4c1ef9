package cgroupfix

import (
	"context"
	"path"

	"github.com/containerd/log"
)

// recount corrects the children's-sums records (see childSums) from the children and the
// claims: a record misses budget a sibling gave back outside rtshim. It runs in a sweep, at
// most every sweepInterval, under the lock, so the claims it reads are the ones the records
// count.
//
// A child that is a claim's leaf counts at the claim's budget, as its grant counted it and as
// its release will take it away, and so does a claim's leaf that is gone: BeforeDelete sets a
// leaf to 0, and runc delete removes it, before the release. Counting the cgroups alone there
// would count such a container twice over when its release takes its part away, and the
// parent would be lowered below what its children hold.
func (m *Manager) recount(ctx context.Context) {
	// A look without the lock, which removes nothing: another process may be writing a record.
	if !m.State.hasSums() {
		return
	}
	unlock, err := m.lock()
	if err != nil {
		return
	}
	defer unlock()
	claims, ok := m.claims(ctx)
	if !ok {
		return
	}
	claimed := make(map[string]map[string]group) // parent cgroup → leaf name → claim's budget
	for _, c := range claims {
		if c.RuntimeUS <= 0 {
			continue
		}
		dir := path.Dir(c.Leaf)
		if claimed[dir] == nil {
			claimed[dir] = make(map[string]group)
		}
		claimed[dir][path.Base(c.Leaf)] = group{c.RuntimeUS, c.PeriodUS}
	}
	for _, rec := range m.State.allSums() {
		cur, err := m.readGroup(rec.Cgroup)
		if err != nil || !rec.counts(cur) {
			_ = m.State.deleteSums(rec.Cgroup)
			continue
		}
		sums, err := m.claimedSums(rec.Cgroup, cur.period, claimed[rec.Cgroup])
		if err != nil {
			_ = m.State.deleteSums(rec.Cgroup)
			continue
		}
		if sums.Runtime == rec.Runtime && sums.Ratio == rec.Ratio {
			continue
		}
		log.G(ctx).WithField("cgroup", rec.Cgroup).WithField("recorded", rec.need()).WithField("counted", sums.need()).
			Info("corrected what rtshim records its children hold (changed outside rtshim)")
		sums.Held = cur.runtime
		m.keepSums([]childSums{sums})
	}
}

// claimedSums is childrenSums with the leaves of claims (name → budget) counted at their
// claims' budgets, present or not.
func (m *Manager) claimedSums(cg string, period int64, claimed map[string]group) (childSums, error) {
	sums := childSums{Cgroup: cg, Period: period}
	names, err := m.CPU.Children(cg)
	if err != nil {
		return sums, err
	}
	for _, n := range names {
		if _, ok := claimed[n]; ok {
			continue
		}
		g, err := m.readChild(path.Join(cg, n))
		if err != nil {
			return sums, err
		}
		sums.add(g, 1)
	}
	for _, g := range claimed {
		sums.add(g, 1)
	}
	return sums, nil
}
