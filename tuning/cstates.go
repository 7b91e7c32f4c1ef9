package tuning

import (
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"

	"github.com/rtshim/rtshim/oci"
)

// C-states: each CPU's pm_qos_resume_latency_us bounds the exit latency of the idle states
// cpuidle may choose on it. The kernel reads "0" as no constraint and "n/a" as 0 µs (no idle
// state but polling); both rtshim and CRI-O spell them so (oci.LatencyAny, oci.LatencyNone).
const (
	kindLatency = "resume-latency"
	latencyFile = "power/pm_qos_resume_latency_us"
)

type cstates struct{}

func latencyTarget(cpu int) Target {
	return Target{Kind: kindLatency, Path: cpuPath(cpu, latencyFile), CPU: cpu}
}

func (cstates) read(m *Manager, t Target) (string, error) { return m.Sys.ReadFile(t.Path) }

func (cstates) write(m *Manager, t Target, v string) error {
	if err := m.Sys.WriteFile(t.Path, v); err != nil {
		return fmt.Errorf("%w: CPU %d: set resume latency %s: %w", errdefs.ErrFailedPrecondition, t.CPU, v, err)
	}
	return nil
}

func (cstates) gone(m *Manager, t Target) bool { _, err := m.Sys.ReadFile(t.Path); return err != nil }

// desired is the strictest latency any active holder of the CPU asks for: containers sharing a
// CPU each get at least what they asked.
func (cstates) desired(_ *Manager, t Target, _ string, active []*Holder) (string, bool, error) {
	want, held := "", false
	for _, h := range active {
		if h.Tuning.ResumeLatency == "" || !h.Tuning.Set().Contains(t.CPU) {
			continue
		}
		if !held || stricter(h.Tuning.ResumeLatency, want) {
			want = h.Tuning.ResumeLatency
		}
		held = true
	}
	return want, held, nil
}

// stricter orders resume latencies: "n/a" (0 µs) < N µs < "0" (no constraint).
func stricter(a, b string) bool { return latencyUS(a) < latencyUS(b) }

func latencyUS(v string) int64 {
	switch v {
	case oci.LatencyNone:
		return 0
	case oci.LatencyAny:
		return 1 << 62
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 1 << 62
	}
	return n
}
