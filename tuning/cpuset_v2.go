package tuning

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/cpulist"
)

// cgroup v2: a container with CPUs of its own gets a cpuset partition (cpuset.cpus.partition):
// "root" makes its CPUs a scheduling domain and root domain of their own, where SCHED_DEADLINE
// admits a task pinned to them, "isolated" (cpu-load-balancing=disable) takes them out of load
// balancing. Since Linux 6.7 the partition can sit anywhere ("remote"): each ancestor lists the
// CPUs in cpuset.cpus.exclusive, which rtshim extends top-down and gives back bottom-up. Older
// kernels require every ancestor to be a partition root itself, which rtshim does not make (it
// would confine every other container below it): the operator arranges the parent (e.g. a
// kubepods or rt cgroup with cpuset.cpus.partition=root and the tunable CPUs), see
// docs/tuning.md. runc writes the leaf's cpuset.cpus from linux.resources.cpu.cpus.
const (
	kindExclusive = "cpuset-exclusive"
	kindPartition = "cpuset-partition"

	fileExclusive = "cpuset.cpus.exclusive"
	filePartition = "cpuset.cpus.partition"
)

type cpusetV2 struct{}

func (m *Manager) cpusetTargets(h *Holder) ([]Target, error) {
	if h.Leaf == "" || !m.Cpuset.Exists(h.Leaf) {
		return nil, fmt.Errorf("%w: container %s: its cgroup %q is not there to become a cpuset partition", errdefs.ErrFailedPrecondition, h.name(), h.Leaf)
	}
	if !m.V2 {
		return m.cpusetV1Targets(h), nil
	}
	if _, err := m.Cpuset.ReadFile(h.Leaf, filePartition); err != nil {
		return nil, fmt.Errorf("%w: container %s: cgroup %s has no %s: enable the cpuset controller (cgroup.subtree_control of its parents): %w",
			errdefs.ErrFailedPrecondition, h.name(), h.Leaf, filePartition, err)
	}
	var out []Target
	if _, err := m.Cpuset.ReadFile(h.Leaf, fileExclusive); err == nil {
		for _, a := range append(cgroupfix.Ancestors(h.Leaf), h.Leaf) {
			out = append(out, Target{Kind: kindExclusive, Path: a, CPU: -1})
		}
	} else if parent := path.Dir(h.Leaf); parent != "/" {
		// No remote partitions (Linux < 6.7): the parent must be a partition root already.
		p, err := m.Cpuset.ReadFile(parent, filePartition)
		if err != nil || p != "root" {
			return nil, fmt.Errorf("%w: container %s: this kernel has no remote cpuset partitions (%s: Linux 6.7), so its cgroup "+
				"%s can only be a partition below a parent that is one: %s has %s=%q. Make the parent a partition root holding "+
				"the tunable CPUs (cpuset.cpus=<CPUs>, then cpuset.cpus.partition=root, on it and each of its ancestors), "+
				"or use Linux 6.7 or newer", errdefs.ErrFailedPrecondition, h.name(), fileExclusive, h.Leaf, parent, filePartition, p)
		}
	}
	return append(out, Target{Kind: kindPartition, Path: h.Leaf, CPU: -1}), nil
}

func (cpusetV2) file(t Target) string {
	if t.Kind == kindExclusive {
		return fileExclusive
	}
	return filePartition
}

func (k cpusetV2) read(m *Manager, t Target) (string, error) {
	v, err := m.Cpuset.ReadFile(t.Path, k.file(t))
	if t.Kind == kindPartition {
		v, _, _ = strings.Cut(v, " ") // "root invalid (reason)": the state is its first word
	}
	return v, err
}

func (k cpusetV2) write(m *Manager, t Target, v string) error {
	w := v
	if w == "" {
		w = "\n" // an empty write is no write at all
	}
	err := m.Cpuset.WriteFile(t.Path, k.file(t), w)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL) && t.Kind == kindPartition:
		return fmt.Errorf("%w: the kernel refused %s=%s on cgroup %s (EINVAL): its cpuset.cpus must be CPUs no sibling cgroup "+
			"lists, within its parent's, and must leave the parent a CPU if the parent has processes: %w",
			errdefs.ErrFailedPrecondition, filePartition, v, t.Path, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: the kernel refused %s=%q on cgroup %s (EINVAL): another cgroup below its parent already holds "+
			"some of these CPUs exclusively, or its parent does not: %w", errdefs.ErrFailedPrecondition, fileExclusive, v, t.Path, err)
	}
	return fmt.Errorf("%w: cgroup %s: write %s=%q: %w", errdefs.ErrFailedPrecondition, t.Path, k.file(t), v, err)
}

func (cpusetV2) gone(m *Manager, t Target) bool { return !m.Cpuset.Exists(t.Path) }

func (cpusetV2) desired(_ *Manager, t Target, base string, active []*Holder) (string, bool, error) {
	if t.Kind == kindPartition {
		for _, h := range active {
			if h.Tuning.Exclusive && h.Leaf == t.Path {
				if h.Tuning.NoLoadBalance {
					return "isolated", true, nil
				}
				return "root", true, nil
			}
		}
		return "", false, nil
	}
	b, err := cpulist.Parse(base)
	if err != nil {
		return "", false, fmt.Errorf("baseline %s of cgroup %s: %w", fileExclusive, t.Path, err)
	}
	var below cpulist.Set
	for _, h := range active {
		if h.Tuning.Exclusive && (h.Leaf == t.Path || strings.HasPrefix(h.Leaf, strings.TrimSuffix(t.Path, "/")+"/")) {
			below = below.Union(h.Tuning.Set())
		}
	}
	if below.Minus(b).Empty() {
		return "", false, nil
	}
	return b.Union(below).String(), true, nil
}

// checkPartition reads the partition back: the kernel reports a partition it could not make
// valid as "root invalid (<reason>)" rather than failing the write.
func (m *Manager) checkPartition(h *Holder) error {
	if !m.V2 {
		return nil
	}
	p, err := m.Cpuset.ReadFile(h.Leaf, filePartition)
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, h.name(), err)
	}
	if strings.Contains(p, "invalid") {
		return fmt.Errorf("%w: container %s: the kernel made cgroup %s an invalid partition: %s=%q",
			errdefs.ErrFailedPrecondition, h.name(), h.Leaf, filePartition, p)
	}
	return nil
}
