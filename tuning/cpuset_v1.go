package tuning

import (
	"errors"
	"fmt"
	"path"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// cgroup v1: the container's cpuset becomes exclusive (cpuset.cpu_exclusive=1: no sibling may
// list its CPUs), and with cpu-load-balancing=disable leaves load balancing
// (cpuset.sched_load_balance=0). The kernel makes a cpuset exclusive only below an exclusive
// parent, and builds scheduling (and root) domains from the topmost cpusets that balance: for
// the container's CPUs to be a root domain of their own (SCHED_DEADLINE pinned to them), every
// ancestor must have cpuset.sched_load_balance=0, the root cpuset's included. Those are the
// host's, never written by rtshim: the operator arranges them (docs/tuning.md), rtshim doctor
// reports them.
const (
	kindV1Exclusive   = "cpuset-v1-exclusive"
	kindV1LoadBalance = "cpuset-v1-load-balance"
)

type cpusetV1 struct{}

func (m *Manager) cpusetV1Targets(h *Holder) []Target {
	out := []Target{{Kind: kindV1Exclusive, Path: h.Leaf, CPU: -1}}
	if h.Tuning.NoLoadBalance {
		out = append(out, Target{Kind: kindV1LoadBalance, Path: h.Leaf, CPU: -1})
	}
	return out
}

func (cpusetV1) file(t Target) string {
	if t.Kind == kindV1Exclusive {
		return "cpuset.cpu_exclusive"
	}
	return "cpuset.sched_load_balance"
}

func (k cpusetV1) read(m *Manager, t Target) (string, error) {
	return m.Cpuset.ReadFile(t.Path, k.file(t))
}

func (k cpusetV1) write(m *Manager, t Target, v string) error {
	err := m.Cpuset.WriteFile(t.Path, k.file(t), v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL) && t.Kind == kindV1Exclusive:
		return fmt.Errorf("%w: the kernel refused cpuset.cpu_exclusive=%s on cgroup %s (EINVAL): cgroup v1 makes a cpuset exclusive "+
			"only below an exclusive parent and when no sibling lists its CPUs; set cpuset.cpu_exclusive=1 on %s and its "+
			"ancestors (see docs/tuning.md): %w", errdefs.ErrFailedPrecondition, v, t.Path, path.Dir(t.Path), err)
	}
	return fmt.Errorf("%w: cgroup %s: write %s=%s: %w", errdefs.ErrFailedPrecondition, t.Path, k.file(t), v, err)
}

func (cpusetV1) gone(m *Manager, t Target) bool { return !m.Cpuset.Exists(t.Path) }

func (k cpusetV1) desired(_ *Manager, t Target, _ string, active []*Holder) (string, bool, error) {
	for _, h := range active {
		if h.Tuning.Exclusive && h.Leaf == t.Path && (t.Kind == kindV1Exclusive || h.Tuning.NoLoadBalance) {
			if t.Kind == kindV1Exclusive {
				return "1", true, nil
			}
			return "0", true, nil
		}
	}
	return "", false, nil
}
