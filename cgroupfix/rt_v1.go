package cgroupfix

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const (
	fileRTRuntime = "cpu.rt_runtime_us"
	fileRTPeriod  = "cpu.rt_period_us"
	fileQuotaV1   = "cpu.cfs_quota_us"
	fileCPUMax    = "cpu.max"
)

// rtWrite is one step of a grant, applied in order (ancestors top-down, then the leaf).
type rtWrite struct {
	cgroup   string
	runtime  int64
	period   int64 // written only for the leaf, before its runtime
	baseline string
	leaf     bool
}

// group is a cgroup's RT bandwidth as the kernel sees it.
type group struct{ runtime, period int64 }

func (g group) ratio() int64 { return toRatio(g.period, g.runtime) }

func (m *Manager) readGroup(cg string) (group, error) {
	rt, err := m.readInt(cg, fileRTRuntime)
	if err != nil {
		return group{}, err
	}
	p, err := m.readInt(cg, fileRTPeriod)
	return group{rt, p}, err
}

// readChild is readGroup for a sibling whose period only matters when it holds runtime:
// most siblings (containers without an RT budget) hold none, and skipping the second read
// halves what a grant reads under the lock.
func (m *Manager) readChild(cg string) (group, error) {
	rt, err := m.readInt(cg, fileRTRuntime)
	if err != nil || rt == 0 {
		return group{rt, 0}, err
	}
	p, err := m.readInt(cg, fileRTPeriod)
	return group{rt, p}, err
}

func (m *Manager) readInt(cg, file string) (int64, error) { return ReadInt(m.CPU, cg, file) }

// ReadInt reads a cgroup file that holds one integer (cpu.rt_runtime_us, cpu.cfs_quota_us).
func ReadInt(fs FS, cg, file string) (int64, error) {
	s, err := fs.ReadFile(cg, file)
	if err != nil {
		return 0, fmt.Errorf("read %s of cgroup %s: %w", file, cg, err)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s of cgroup %s: %q is not a number", file, cg, s)
	}
	return v, nil
}

// childrenSums adds up what cg's children hold, over cg's own period, counting override in
// place of the child of that name (it may not exist yet). Its need (childSums.need) sums
// runtimes rather than the kernel's truncated ratios, which gives the round numbers an
// operator expects (9 × 100000 = 900000), and is never less than what the kernel's own
// arithmetic requires. It reads every child: see childSums for how grants avoid that.
func (m *Manager) childrenSums(cg string, period int64, overrideName string, override group) (childSums, error) {
	sums := childSums{Cgroup: cg, Period: period}
	names, err := m.CPU.Children(cg)
	if err != nil && m.CPU.Exists(cg) {
		return sums, fmt.Errorf("list children of cgroup %s: %w", cg, err)
	}
	if overrideName != "" {
		sums.add(override, 1)
	}
	for _, n := range names {
		if n == overrideName {
			continue
		}
		g, err := m.readChild(path.Join(cg, n))
		if err != nil {
			return sums, err
		}
		sums.add(g, 1)
	}
	return sums, nil
}

// grantPlan is what a grant writes (ancestors top-down, then the leaf) and the records of
// the ancestors' children to keep once it is written.
type grantPlan struct {
	writes []rtWrite
	sums   []childSums
	// fromRecords: some ancestor's need came from its record rather than its children.
	fromRecords bool
}

// planV1 works out, without writing anything, the runtime every ancestor of the claim's leaf
// needs so the leaf's budget fits: each raised to what its children need (childrenSums: their
// runtimes summed, at least what the kernel's ratio check requires), never lowered, and a pod
// cgroup never above the claim's pod limit. The root cgroup is the host's limit
// (sched_rt_runtime_us) and is never written. With useRecords, an ancestor whose record
// still counts (childSums) is not read child by child: its record changes by the leaf's part.
func (m *Manager) planV1(c *Claim, useRecords bool) (grantPlan, error) {
	var p grantPlan
	root, err := m.readGroup("/")
	if err != nil {
		return p, fmt.Errorf("%w: cgroup v1 RT group scheduling: %w", errdefs.ErrFailedPrecondition, err)
	}
	if c.RuntimeUS <= 0 || c.PeriodUS <= 0 || c.RuntimeUS > c.PeriodUS {
		return p, fmt.Errorf("%w: RT budget %d µs per %d µs period: runtime must be from 1 to the period",
			errdefs.ErrInvalidArgument, c.RuntimeUS, c.PeriodUS)
	}
	want := group{c.RuntimeUS, c.PeriodUS}
	p.writes = []rtWrite{{cgroup: c.Leaf, runtime: c.RuntimeUS, period: c.PeriodUS, leaf: true}}
	// What the leaf holds before: nothing when new; a retried create's leaf may hold some.
	var childOld group
	if useRecords && m.CPU.Exists(c.Leaf) {
		if childOld, err = m.readChild(c.Leaf); err != nil {
			return p, err
		}
	}
	child, childGroup := c.Leaf, want
	for _, a := range reverse(Ancestors(c.Leaf)) {
		cur := group{0, root.period} // a new cgroup starts with no runtime and the global period
		var rec *childSums
		if m.CPU.Exists(a) {
			if cur, err = m.readGroup(a); err != nil {
				return p, err
			}
			if useRecords {
				rec = m.State.loadSums(a)
			}
		}
		var sums childSums
		if rec.counts(cur) {
			sums = *rec
			sums.add(childOld, -1)
			sums.add(childGroup, 1)
			p.fromRecords = true
		} else if sums, err = m.childrenSums(a, cur.period, path.Base(child), childGroup); err != nil {
			return p, err
		}
		needRuntime := sums.need()
		if limit := c.PodLimitUS; limit > 0 && a == path.Dir(c.Leaf) && c.PodLimitPeriodUS > 0 {
			if scaled := limit * cur.period / c.PodLimitPeriodUS; needRuntime > scaled {
				return p, &noFit{cgroup: a, why: fmt.Sprintf("its containers would hold %d µs per %d µs, and limits.max_pod_rt_runtime_us "+
					"allows a pod %d µs per %d µs", needRuntime, cur.period, limit, c.PodLimitPeriodUS)}
			}
		}
		next := cur
		if needRuntime > cur.runtime {
			next.runtime = needRuntime
			if next.ratio() > root.ratio() || next.runtime > next.period {
				return p, &noFit{cgroup: a, why: fmt.Sprintf("no group may hold more than the host's %d µs per %d µs", root.runtime, root.period)}
			}
			p.writes = append([]rtWrite{{cgroup: a, runtime: next.runtime, baseline: strconv.FormatInt(cur.runtime, 10)}}, p.writes...)
		}
		// A record is kept for what rtshim holds raised: an ancestor with room of its own
		// (an operator's budget) can see its children change within that room unnoticed.
		if rec.counts(cur) || next.runtime != cur.runtime {
			sums.Held = next.runtime
			p.sums = append(p.sums, sums)
		}
		child, childOld, childGroup = a, cur, next
	}
	used, err := m.childrenSums("/", root.period, path.Base(child), childGroup)
	if err != nil {
		return p, err
	}
	if toRatio(root.period, used.need()) > root.ratio() {
		return p, &noFit{cgroup: "/", why: fmt.Sprintf("the host allows %d µs per %d µs (sched_rt_runtime_us) to all groups together", root.runtime, root.period)}
	}
	return p, nil
}

// keepSums records a written plan's sums; a record it cannot write must not be left stale.
func (m *Manager) keepSums(sums []childSums) {
	for _, r := range sums {
		if err := m.State.saveSums(r); err != nil {
			_ = m.State.deleteSums(r.Cgroup)
		}
	}
}

// forgetSums drops the records of cg's ancestors: the next grant or release reads their children.
func (m *Manager) forgetSums(cg string) {
	for _, a := range Ancestors(cg) {
		_ = m.State.deleteSums(a)
	}
}

// noFit is planV1's refusal: cgroup cannot grow to hold the request.
type noFit struct{ cgroup, why string }

func (e *noFit) Error() string { return "cgroup " + e.cgroup + ": " + e.why }

// Available is the largest RT runtime, per probe.PeriodUS, that a grant would admit right now
// for a new container at probe.Leaf under probe's limits (PodLimitUS). It runs the grant's own
// plan (planV1, the kernel's to_ratio arithmetic included) and searches the boundary, so what
// rtshim doctor and the refusal messages call available is exactly what Grant admits. It takes
// no lock: the answer is a snapshot.
func (m *Manager) Available(probe Claim) (int64, error) {
	periodUS := probe.PeriodUS
	if periodUS <= 0 {
		return 0, fmt.Errorf("%w: RT period %d µs", errdefs.ErrInvalidArgument, periodUS)
	}
	fits := func(runtime int64) (bool, error) {
		c := probe
		c.RuntimeUS = runtime
		_, err := m.planV1(&c, false)
		var nf *noFit
		if errors.As(err, &nf) {
			return false, nil
		}
		return err == nil, err
	}
	lo, hi := int64(0), periodUS // fits(lo) holds; find the largest that fits
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		ok, err := fits(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// refusal turns planV1's refusal into the error a user reads: the cgroup that is full, what
// was asked and what is available there now.
func (m *Manager) refusal(c *Claim, nf *noFit) error {
	avail, err := m.Available(*c)
	shown := fmt.Sprintf("%d µs available", avail)
	if err != nil {
		shown = "available unknown (" + err.Error() + ")"
	}
	return fmt.Errorf("%w: no RT budget for container %s: cgroup %s cannot grant %d µs per %d µs period, %s: %s; "+
		"lower rtshim.io/rt-runtime-us or stop other real-time containers",
		errdefs.ErrResourceExhausted, c.ID, nf.cgroup, c.RuntimeUS, c.PeriodUS, shown, nf.why)
}

// applyV1 writes a plan top-down. Ancestors' old values are recorded before they change. A
// leaf's period is written only when it differs: every write of an RT file makes the kernel
// check the whole task group tree (tg_rt_schedulable), and a new cgroup has the global
// period already. retry: see writeRuntime; a plan made from records is not retried, it is
// made again from the children (Grant).
func (m *Manager) applyV1(writes []rtWrite, retry bool) error {
	for _, w := range writes {
		if err := m.CPU.Mkdir(w.cgroup); err != nil {
			return fmt.Errorf("create cgroup %s: %w", w.cgroup, err)
		}
		if !w.leaf {
			if err := m.State.RecordBaseline(w.cgroup, fileRTRuntime, w.baseline); err != nil {
				return err
			}
		} else if err := m.hook(StepGrantAncestors); err != nil {
			return err
		} else if err := m.writePeriod(w.cgroup, w.period); err != nil {
			return kernelError(w.cgroup, fileRTPeriod, w.period, err)
		}
		if err := m.writeRuntime(w.cgroup, w.runtime, retry); err != nil {
			return kernelError(w.cgroup, fileRTRuntime, w.runtime, err)
		}
	}
	return nil
}

func (m *Manager) writePeriod(cg string, period int64) error {
	if cur, err := m.readInt(cg, fileRTPeriod); err == nil && cur == period {
		return nil
	}
	return m.writeRT(cg, fileRTPeriod, period)
}

// change is how a child's RT bandwidth changed in a release, for its parent's record; !known
// when it cannot be told (the parent then reads its children).
type change struct {
	old, new group
	known    bool
}

// settleV1 sets an ancestor rtshim raised to what its children need now, but never below what
// it held before rtshim touched it; once back there, rtshim forgets it. child is how the
// ancestor's child on the released leaf's path changed; it returns how cg changed.
func (m *Manager) settleV1(cg string, child change) (change, error) {
	base, ok, err := m.State.LoadBaseline(cg, fileRTRuntime)
	if err != nil {
		return change{}, err
	}
	if !ok {
		return change{known: true}, nil // not rtshim's to lower: it keeps its value
	}
	if !m.CPU.Exists(cg) {
		_ = m.State.deleteSums(cg)
		return change{}, m.State.DeleteBaseline(cg, fileRTRuntime)
	}
	baseline, err := strconv.ParseInt(base, 10, 64)
	if err != nil {
		return change{}, fmt.Errorf("corrupt baseline %q of cgroup %s", base, cg)
	}
	cur, err := m.readGroup(cg)
	if err != nil {
		return change{}, err
	}
	var rec *childSums
	if child.known {
		rec = m.State.loadSums(cg)
	}
	fromRecord := rec.counts(cur)
	var sums childSums
	if fromRecord {
		sums = *rec
		sums.add(child.old, -1)
		sums.add(child.new, 1)
	} else if sums, err = m.childrenSums(cg, cur.period, "", group{}); err != nil {
		return change{}, err
	}
	target := max(baseline, sums.need())
	if target != cur.runtime {
		err := m.writeRuntime(cg, target, !fromRecord)
		if fromRecord && errors.Is(err, unix.EINVAL) {
			// The record missed budget a child took from outside rtshim: count the children.
			if sums, err = m.childrenSums(cg, cur.period, "", group{}); err != nil {
				return change{}, err
			}
			if target = max(baseline, sums.need()); target != cur.runtime {
				err = m.writeRuntime(cg, target, true)
			}
		}
		if err != nil {
			_ = m.State.deleteSums(cg)
			return change{}, kernelError(cg, fileRTRuntime, target, err)
		}
	}
	next := group{target, cur.period}
	if target == baseline {
		_ = m.State.deleteSums(cg)
		return change{old: cur, new: next, known: true}, m.State.DeleteBaseline(cg, fileRTRuntime)
	}
	sums.Held = target
	m.keepSums([]childSums{sums})
	return change{old: cur, new: next, known: true}, nil
}

// writeRuntime writes a cgroup's RT runtime. A child cgroup that was just removed (the cgroup of
// a container runc deleted a moment ago, an aborted create's) stays in the kernel's task group
// tree until its RCU grace period ends, still holding its budget: a write the plan, made from
// the directory listing, expects to fit fails with EINVAL for those few milliseconds, lowering
// a parent and raising a sibling alike, so it is retried for a while.
func (m *Manager) writeRuntime(cg string, runtime int64, retry bool) error {
	deadline := time.Now().Add(rcuRetry)
	for {
		err := m.writeRT(cg, fileRTRuntime, runtime)
		if err == nil || !retry || !errors.Is(err, unix.EINVAL) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rcuRetry bounds how long writeRuntime waits for removed children to leave the kernel's tree.
const rcuRetry = 2 * time.Second

// kernelError turns EINVAL/EBUSY from cgroupfs into a sentence that says what happened.
func kernelError(cg, file string, v int64, err error) error {
	switch {
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: cgroup %s: the kernel refused %s=%d (EINVAL): the budget does not fit in its parent's "+
			"or exceeds its period (another process changed the tree?): %w", errdefs.ErrFailedPrecondition, cg, file, v, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%w: cgroup %s: the kernel refused %s=%d (EBUSY): real-time tasks still run in it: %w",
			errdefs.ErrFailedPrecondition, cg, file, v, err)
	}
	return fmt.Errorf("cgroup %s: write %s=%d: %w", cg, file, v, err)
}
