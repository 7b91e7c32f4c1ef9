package tuning

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
)

// The cpufreq governor of each of the container's CPUs. Two containers sharing a CPU cannot set
// different ones (Reserve refuses the second).
const (
	kindGovernor  = "governor"
	governorFile  = "cpufreq/scaling_governor"
	availableFile = "cpufreq/scaling_available_governors"
)

type governor struct{}

func governorTarget(cpu int) Target {
	return Target{Kind: kindGovernor, Path: cpuPath(cpu, governorFile), CPU: cpu}
}

// checkGovernor refuses a governor the CPU's cpufreq driver does not offer.
func (m *Manager) checkGovernor(cpu int, g string) error {
	avail, err := m.Sys.ReadFile(cpuPath(cpu, availableFile))
	if err != nil {
		return fmt.Errorf("cpu-freq-governor: CPU %d has no cpufreq (a virtual machine, or the firmware controls the frequency): %w", cpu, err)
	}
	if !slices.Contains(strings.Fields(avail), g) {
		return fmt.Errorf("cpu-freq-governor: CPU %d's cpufreq driver offers %s, not %s", cpu, avail, g)
	}
	return nil
}

func (governor) read(m *Manager, t Target) (string, error) { return m.Sys.ReadFile(t.Path) }

func (governor) write(m *Manager, t Target, v string) error {
	if err := m.Sys.WriteFile(t.Path, v); err != nil {
		return fmt.Errorf("%w: CPU %d: set cpufreq governor %s: %w", errdefs.ErrFailedPrecondition, t.CPU, v, err)
	}
	return nil
}

func (governor) gone(m *Manager, t Target) bool { _, err := m.Sys.ReadFile(t.Path); return err != nil }

func (governor) desired(_ *Manager, t Target, _ string, active []*Holder) (string, bool, error) {
	for _, h := range active {
		if h.Tuning.Governor != "" && h.Tuning.Set().Contains(t.CPU) {
			return h.Tuning.Governor, true, nil
		}
	}
	return "", false, nil
}
