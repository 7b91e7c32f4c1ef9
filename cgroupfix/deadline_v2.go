package cgroupfix

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
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
	want, err := ParseCPUList(cpus)
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
	have, err := ParseCPUList(eff)
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

// ParseCPUList parses a kernel CPU list ("0-3,5,7-8") into sorted, distinct CPU numbers.
func ParseCPUList(s string) ([]int, error) {
	var set [maxCPUs]bool
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		if last >= maxCPUs {
			return nil, fmt.Errorf("CPU %d is beyond %d", last, maxCPUs-1)
		}
		for c := first; c <= last; c++ {
			set[c] = true
		}
	}
	var out []int
	for c, ok := range set {
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// maxCPUs bounds CPU numbers (the kernel's NR_CPUS maximum).
const maxCPUs = 8192
