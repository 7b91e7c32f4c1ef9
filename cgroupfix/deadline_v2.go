package cgroupfix

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/rtshim/rtshim/internal/cpulist"
)

// DeadlineDomainV2 checks, on cgroup v2, that a SCHED_DEADLINE container restricted to cpus
// (linux.resources.cpu.cpus, "" for no restriction) may run on every CPU of the root domain
// its cgroup leaf belongs to: the kernel refuses SCHED_DEADLINE to a task whose affinity does
// not span its root domain (EPERM from sched_setattr, which runc reports as "error setting
// scheduler: operation not permitted"). The root domain is the CPUs of the nearest ancestor
// that is a cpuset partition root ("/" if none). When it cannot tell, it returns nil and
// leaves the verdict to the kernel.
func (m *Manager) DeadlineDomainV2(leaf, cpus string) error {
	if !m.V2 || strings.TrimSpace(cpus) == "" {
		return nil
	}
	want, err := cpulist.Parse(cpus)
	if err != nil {
		return fmt.Errorf("%w: linux.resources.cpu.cpus=%q: %w", errdefs.ErrInvalidArgument, truncate(cpus), err)
	}
	domain := "/"
	for _, a := range reverse(append(Ancestors(leaf), leaf)) {
		if p, err := m.CPU.ReadFile(a, "cpuset.cpus.partition"); err == nil && p == "root" {
			domain = a
			break
		}
	}
	eff, err := m.CPU.ReadFile(domain, "cpuset.cpus.effective")
	if err != nil {
		return nil
	}
	have, err := cpulist.Parse(eff)
	if err != nil || len(have) == 0 {
		return nil
	}
	var missing []int
	for _, c := range have {
		if !slices.Contains(want, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: SCHED_DEADLINE in a container restricted to CPUs %s (linux.resources.cpu.cpus), whose root "+
		"domain spans CPUs %s (cpuset.cpus.effective of cgroup %s): the kernel admits a SCHED_DEADLINE task only if it may "+
		"run on every CPU of its root domain. Run the container without a CPU restriction, or give it CPUs of its own "+
		"(rtshim.io/cpus: a cpuset partition, cpuset.cpus.partition=root, where the limits allow it)", errdefs.ErrFailedPrecondition, truncate(cpus), eff, domain)
}
