package tuning

import (
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"

	"github.com/rtshim/rtshim/internal/cpulist"
)

const cpuDir = "/sys/devices/system/cpu"

func cpuPath(cpu int, file string) string { return cpuDir + "/cpu" + strconv.Itoa(cpu) + "/" + file }

// checkHost refuses, with the reason, what this host cannot do for a tuning: CPUs it does not
// have online, a governor its cpufreq driver lacks, no resume latency control.
func (m *Manager) checkHost(h *Holder) error {
	t := h.Tuning
	cpus := t.Set()
	online, err := m.online()
	if err != nil {
		return err
	}
	if out := cpus.Minus(online); !out.Empty() {
		return fmt.Errorf("%w: container %s: CPUs %s are not online on this host (online: %s)",
			errdefs.ErrFailedPrecondition, h.name(), out, online)
	}
	for _, cpu := range cpus {
		if t.ResumeLatency != "" {
			if _, err := m.Sys.ReadFile(cpuPath(cpu, latencyFile)); err != nil {
				return fmt.Errorf("%w: container %s: cpu-c-states: CPU %d has no %s (kernel without CONFIG_PM?): %w",
					errdefs.ErrFailedPrecondition, h.name(), cpu, latencyFile, err)
			}
		}
		if t.Governor != "" {
			if err := m.checkGovernor(cpu, t.Governor); err != nil {
				return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, h.name(), err)
			}
		}
	}
	if t.IRQ != "" {
		if _, err := m.Sys.ReadFile(irqDefaultPath); err != nil {
			return fmt.Errorf("%w: container %s: irq-load-balancing: %w", errdefs.ErrFailedPrecondition, h.name(), err)
		}
	}
	return nil
}

// siblings is cpu's hyper-thread siblings (itself included).
func (m *Manager) siblings(cpu int) cpulist.Set {
	s, err := m.Sys.ReadFile(cpuPath(cpu, "topology/thread_siblings_list"))
	if err != nil {
		return cpulist.Of(cpu)
	}
	set, err := cpulist.Parse(s)
	if err != nil || set.Empty() {
		return cpulist.Of(cpu)
	}
	return set
}
