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

// childrenNeed is the runtime cg needs, over its own period, for its children to fit: the sum
// of their runtimes (scaled up to cg's period where theirs differs), counting override in
// place of the child of that name (it may not exist yet). Summing runtimes rather than the
// kernel's truncated ratios gives the round numbers an operator expects (9 × 100000 = 900000);
// the result is never less than what the kernel's own arithmetic requires.
func (m *Manager) childrenNeed(cg string, period int64, overrideName string, override group) (int64, error) {
	names, err := m.CPU.Children(cg)
	if err != nil && m.CPU.Exists(cg) {
		return 0, fmt.Errorf("list children of cgroup %s: %w", cg, err)
	}
	var runtime, ratio int64
	add := func(g group) {
		ratio += g.ratio()
		switch {
		case g.runtime < 0:
			runtime += period
		case g.period == period:
			runtime += g.runtime
		case g.period > 0:
			runtime += (g.runtime*period + g.period - 1) / g.period
		}
	}
	if overrideName != "" {
		add(override)
	}
	for _, n := range names {
		if n == overrideName {
			continue
		}
		g, err := m.readChild(path.Join(cg, n))
		if err != nil {
			return 0, err
		}
		add(g)
	}
	return max(runtime, runtimeFor(ratio, period)), nil
}

// planV1 works out, without writing anything, the runtime every ancestor of the claim's leaf
// needs so the leaf's budget fits: each raised to what its children need (childrenNeed: their
// runtimes summed, at least what the kernel's ratio check requires), never lowered, and a pod
// cgroup never above the claim's pod limit. The root cgroup is the host's limit
// (sched_rt_runtime_us) and is never written.
func (m *Manager) planV1(c *Claim) ([]rtWrite, error) {
	root, err := m.readGroup("/")
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup v1 RT group scheduling: %w", errdefs.ErrFailedPrecondition, err)
	}
	if c.RuntimeUS <= 0 || c.PeriodUS <= 0 || c.RuntimeUS > c.PeriodUS {
		return nil, fmt.Errorf("%w: RT budget %d µs per %d µs period: runtime must be from 1 to the period",
			errdefs.ErrInvalidArgument, c.RuntimeUS, c.PeriodUS)
	}
	want := group{c.RuntimeUS, c.PeriodUS}
	leaf := rtWrite{cgroup: c.Leaf, runtime: c.RuntimeUS, period: c.PeriodUS, leaf: true}
	plan := []rtWrite{leaf}
	child, childGroup := c.Leaf, want
	for _, a := range reverse(Ancestors(c.Leaf)) {
		cur := group{0, root.period} // a new cgroup starts with no runtime and the global period
		if m.CPU.Exists(a) {
			if cur, err = m.readGroup(a); err != nil {
				return nil, err
			}
		}
		needRuntime, err := m.childrenNeed(a, cur.period, path.Base(child), childGroup)
		if err != nil {
			return nil, err
		}
		if limit := c.PodLimitUS; limit > 0 && a == path.Dir(c.Leaf) && c.PodLimitPeriodUS > 0 {
			if scaled := limit * cur.period / c.PodLimitPeriodUS; needRuntime > scaled {
				return nil, &noFit{cgroup: a, why: fmt.Sprintf("its containers would hold %d µs per %d µs, and limits.max_pod_rt_runtime_us "+
					"allows a pod %d µs per %d µs", needRuntime, cur.period, limit, c.PodLimitPeriodUS)}
			}
		}
		next := cur
		if needRuntime > cur.runtime {
			next.runtime = needRuntime
			if next.ratio() > root.ratio() || next.runtime > next.period {
				return nil, &noFit{cgroup: a, why: fmt.Sprintf("no group may hold more than the host's %d µs per %d µs", root.runtime, root.period)}
			}
			plan = append([]rtWrite{{cgroup: a, runtime: next.runtime, baseline: strconv.FormatInt(cur.runtime, 10)}}, plan...)
		}
		child, childGroup = a, next
	}
	usedRuntime, err := m.childrenNeed("/", root.period, path.Base(child), childGroup)
	if err != nil {
		return nil, err
	}
	if used := toRatio(root.period, usedRuntime); used > root.ratio() {
		return nil, &noFit{cgroup: "/", why: fmt.Sprintf("the host allows %d µs per %d µs (sched_rt_runtime_us) to all groups together", root.runtime, root.period)}
	}
	return plan, nil
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
		_, err := m.planV1(&c)
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

// applyV1 writes a plan top-down. Ancestors' old values are recorded before they change.
func (m *Manager) applyV1(plan []rtWrite) error {
	for _, w := range plan {
		if err := m.CPU.Mkdir(w.cgroup); err != nil {
			return fmt.Errorf("create cgroup %s: %w", w.cgroup, err)
		}
		if !w.leaf {
			if err := m.State.RecordBaseline(w.cgroup, fileRTRuntime, w.baseline); err != nil {
				return err
			}
		} else if err := m.hook(StepGrantAncestors); err != nil {
			return err
		} else if err := m.CPU.WriteFile(w.cgroup, fileRTPeriod, strconv.FormatInt(w.period, 10)); err != nil {
			return kernelError(w.cgroup, fileRTPeriod, w.period, err)
		}
		if err := m.writeRuntime(w.cgroup, w.runtime); err != nil {
			return kernelError(w.cgroup, fileRTRuntime, w.runtime, err)
		}
	}
	return nil
}

// settleV1 sets an ancestor rtshim raised to what its children need now, but never below what
// it held before rtshim touched it; once back there, rtshim forgets it.
func (m *Manager) settleV1(cg string) error {
	base, ok, err := m.State.LoadBaseline(cg, fileRTRuntime)
	if err != nil || !ok {
		return err
	}
	if !m.CPU.Exists(cg) {
		return m.State.DeleteBaseline(cg, fileRTRuntime)
	}
	baseline, err := strconv.ParseInt(base, 10, 64)
	if err != nil {
		return fmt.Errorf("corrupt baseline %q of cgroup %s", base, cg)
	}
	cur, err := m.readGroup(cg)
	if err != nil {
		return err
	}
	need, err := m.childrenNeed(cg, cur.period, "", group{})
	if err != nil {
		return err
	}
	target := max(baseline, need)
	if target != cur.runtime {
		if err := m.writeRuntime(cg, target); err != nil {
			return kernelError(cg, fileRTRuntime, target, err)
		}
	}
	if target == baseline {
		return m.State.DeleteBaseline(cg, fileRTRuntime)
	}
	return nil
}

// writeRuntime writes a cgroup's RT runtime. A child cgroup that was just removed (the cgroup of
// a container runc deleted a moment ago, an aborted create's) stays in the kernel's task group
// tree until its RCU grace period ends, still holding its budget: a write the plan, made from
// the directory listing, expects to fit fails with EINVAL for those few milliseconds, lowering
// a parent and raising a sibling alike, so it is retried for a while.
func (m *Manager) writeRuntime(cg string, runtime int64) error {
	deadline := time.Now().Add(rcuRetry)
	for {
		err := m.CPU.WriteFile(cg, fileRTRuntime, strconv.FormatInt(runtime, 10))
		if err == nil || !errors.Is(err, unix.EINVAL) || time.Now().After(deadline) {
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
