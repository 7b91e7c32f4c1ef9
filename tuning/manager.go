package tuning

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/cpulist"
)

// Manager tunes the host for containers and gives it back.
type Manager struct {
	// Sys is the host's /proc and /sys.
	Sys FS
	// Cpuset is the cgroup hierarchy with the cpuset controller: the unified one when V2.
	Cpuset cgroupfix.FS
	V2     bool
	// State is the host-wide state dir: its lock (the one RT budgets take too) and the records.
	State cgroupfix.State
	// ProcRoot is where owners' /proc/<pid>/stat are (a path of this process's filesystem).
	ProcRoot string
	// Irqbalance talks to a running irqbalance; nil: none is asked (see FindIrqbalance).
	Irqbalance Irqbalance

	rec records
}

func (m *Manager) init() { m.rec = records{dir: m.State.Dir} }

// Reserve checks a container's tuning against the host and every other container's, and
// records it, before anything is changed: the record is what makes the CPUs the container's.
// It refuses, naming both containers, CPUs another container holds exclusively (or that an
// exclusive request would take from another's tuning) and a governor another container set on
// a shared CPU. Holders whose shim died are released first when they stand in the way.
func (m *Manager) Reserve(ctx context.Context, h *Holder) error {
	m.init()
	unlock, err := m.State.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.checkHost(h); err != nil {
		return err
	}
	err = m.checkOthers(h)
	if err != nil && m.reapStale(ctx) > 0 {
		err = m.checkOthers(h)
	}
	if err != nil {
		return err
	}
	h.Applied, h.Releasing = false, false
	return m.rec.saveHolder(h)
}

// checkOthers is the admission against the other holders.
func (m *Manager) checkOthers(h *Holder) error {
	holders, err := m.rec.holders()
	if err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrFailedPrecondition, err)
	}
	mine := h.Tuning.Set()
	exclusive := cpulist.Set{}
	for _, o := range holders {
		if o.Namespace == h.Namespace && o.ID == h.ID || o.Releasing {
			continue
		}
		theirs := o.Tuning.Set()
		if o.Tuning.Exclusive {
			exclusive = exclusive.Union(theirs)
		}
		both := mine.Intersect(theirs)
		switch {
		case both.Empty():
		case o.Tuning.Exclusive:
			return fmt.Errorf("%w: container %s asks for CPUs %s (%s), but container %s holds CPUs %s exclusively",
				errdefs.ErrConflict, h.name(), both, h.Tuning.String(), o.name(), theirs)
		case h.Tuning.Exclusive:
			return fmt.Errorf("%w: container %s asks for CPUs %s exclusively, but container %s tunes CPUs %s (%s)",
				errdefs.ErrConflict, h.name(), mine, o.name(), both, o.Tuning.String())
		case h.Tuning.Governor != "" && o.Tuning.Governor != "" && h.Tuning.Governor != o.Tuning.Governor:
			return fmt.Errorf("%w: container %s asks for cpufreq governor %s on CPUs %s, where container %s set %s",
				errdefs.ErrConflict, h.name(), h.Tuning.Governor, both, o.name(), o.Tuning.Governor)
		}
	}
	if h.Tuning.Exclusive {
		online, err := m.online()
		if err != nil {
			return err
		}
		if left := online.Minus(exclusive.Union(mine)); left.Empty() {
			return fmt.Errorf("%w: container %s asks for CPUs %s exclusively, which would leave no CPU of %s to the host "+
				"(CPUs %s are other containers')", errdefs.ErrResourceExhausted, h.name(), mine, online, exclusive)
		}
	}
	return nil
}

// Apply tunes the host for container ns/id, whose cgroup (cpuset hierarchy) is leaf: the step
// between runc create and runc start. IRQs the kernel will not move (per-CPU ones: EIO) are
// skipped and logged. On error the caller releases the container.
func (m *Manager) Apply(ctx context.Context, ns, id, leaf string) error {
	m.init()
	unlock, err := m.State.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := m.rec.loadHolder(ns, id)
	if err != nil || h == nil {
		return err
	}
	h.Leaf, h.Applied = leaf, true
	if err := m.rec.saveHolder(h); err != nil {
		return err
	}
	holders, err := m.rec.holders()
	if err != nil {
		return err
	}
	active := slices.DeleteFunc(holders, func(o *Holder) bool { return !o.active() })
	targets, err := m.targets(h)
	if err != nil {
		return err
	}
	var unmovable []string
	for _, t := range targets {
		err := m.applyTarget(t, active)
		if t.Kind == kindIRQ && isUnmovable(err) {
			unmovable = append(unmovable, irqName(t))
			continue
		}
		if err != nil {
			return err
		}
	}
	if t := h.Tuning; t.Exclusive {
		if err := m.checkPartition(h); err != nil {
			return err
		}
	}
	l := log.G(ctx).WithField("tuning", h.Tuning.String())
	if len(unmovable) > 0 {
		l = l.WithField("irqs_not_moved", unmovable)
		l.Info("IRQs the kernel keeps on their CPUs (per-CPU or kernel-managed) were left in place")
	}
	l.Info("host tuned for container")
	return nil
}

// targets lists the files a holder's tuning changes, in the order they are applied.
func (m *Manager) targets(h *Holder) ([]Target, error) {
	var out []Target
	t := h.Tuning
	if t.Exclusive {
		ts, err := m.cpusetTargets(h)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	if t.IRQ != "" {
		ts, err := m.irqTargets(h)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	for _, cpu := range h.Tuning.Set() {
		if t.ResumeLatency != "" {
			out = append(out, latencyTarget(cpu))
		}
		if t.Governor != "" {
			out = append(out, governorTarget(cpu))
		}
	}
	return out, nil
}

// Release gives back everything container ns/id's tuning changed (the last holder of a file
// writes its baseline back) and forgets it. It is idempotent.
func (m *Manager) Release(ctx context.Context, ns, id string) error {
	m.init()
	unlock, err := m.State.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := m.rec.loadHolder(ns, id)
	if err != nil || h == nil {
		return err
	}
	return m.release(ctx, h)
}

func (m *Manager) release(ctx context.Context, h *Holder) error {
	if !h.Releasing {
		h.Releasing = true
		if err := m.rec.saveHolder(h); err != nil {
			return err
		}
	}
	if err := m.settle(ctx); err != nil {
		return fmt.Errorf("give back host tuning of %s: %w", h.name(), err)
	}
	return m.rec.deleteHolder(h)
}

// Adopt hands a holder to another owner: runc-rt exits after create, and the container's init
// owns its tuning from then on.
func (m *Manager) Adopt(ns, id string, owner cgroupfix.Owner) error {
	m.init()
	unlock, err := m.State.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	h, err := m.rec.loadHolder(ns, id)
	if err != nil || h == nil {
		return err
	}
	h.Owner = owner
	return m.rec.saveHolder(h)
}

// Sweep releases the holders whose shim is gone and whose container is gone too (its cgroup
// removed or empty): what a killed shim left. Every container delete on the host runs it.
func (m *Manager) Sweep(ctx context.Context) {
	m.init()
	holders, err := m.rec.holders()
	if err != nil {
		log.G(ctx).WithError(err).Warn("host tuning records")
	}
	if !slices.ContainsFunc(holders, m.stale) {
		return
	}
	unlock, err := m.State.Lock()
	if err != nil {
		return
	}
	defer unlock()
	m.reapStale(ctx)
}

// reapStale releases stale holders (under the lock) and returns how many.
func (m *Manager) reapStale(ctx context.Context) (n int) {
	holders, _ := m.rec.holders()
	for _, h := range holders {
		if !m.stale(h) {
			continue
		}
		log.G(ctx).WithField("id", h.ID).Info("giving back host tuning of a container whose shim is gone")
		if err := m.release(ctx, h); err != nil {
			log.G(ctx).WithError(err).WithField("id", h.ID).Warn("release stale tuning")
			continue
		}
		n++
	}
	return n
}

// stale: the owner is gone, and so is the container (no cgroup, or no process in it).
func (m *Manager) stale(h *Holder) bool {
	if h.Owner.Alive(m.ProcRoot) {
		return false
	}
	if h.Leaf == "" || !m.Cpuset.Exists(h.Leaf) {
		return true
	}
	procs, err := m.Cpuset.ReadFile(h.Leaf, "cgroup.procs")
	return err == nil && procs == ""
}

// Holders lists every container's tuning (rtshim status, doctor).
func (m *Manager) Holders() ([]*Holder, error) {
	m.init()
	return m.rec.holders()
}

// Stale reports whether h is left over by a shim that died.
func (m *Manager) Stale(h *Holder) bool { return m.stale(h) }

// online is /sys/devices/system/cpu/online.
func (m *Manager) online() (cpulist.Set, error) {
	s, err := m.Sys.ReadFile(cpuDir + "/online")
	if err != nil {
		return nil, fmt.Errorf("%w: online CPUs: %w", errdefs.ErrFailedPrecondition, err)
	}
	return cpulist.Parse(s)
}
