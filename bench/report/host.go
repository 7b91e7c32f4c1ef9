package report

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// HostInfo describes the host for the page's header, from the procfs and sysfs mounted at
// proc and sys ("/proc", "/sys"): kernel and preemption model, CPUs, cgroup RT scheduling and
// the load average, which says how busy the host was (other work skews every figure).
func HostInfo(proc, sys string) []string {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	release, version := read(filepath.Join(proc, "sys/kernel/osrelease")), read(filepath.Join(proc, "sys/kernel/version"))
	preempt := "not PREEMPT_RT"
	if strings.Contains(version, "PREEMPT_RT") {
		preempt = "PREEMPT_RT"
	}
	model := "?"
	for line := range strings.Lines(read(filepath.Join(proc, "cpuinfo"))) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	cgroups := "cgroup v2"
	switch {
	case read(filepath.Join(sys, "fs/cgroup/cpu/cpu.rt_runtime_us")) != "":
		cgroups = "cgroup v1 with RT group scheduling (root cpu.rt_runtime_us " +
			read(filepath.Join(sys, "fs/cgroup/cpu/cpu.rt_runtime_us")) + ")"
	case read(filepath.Join(sys, "fs/cgroup/cpu/cpu.shares")) != "":
		cgroups = "cgroup v1 without RT group scheduling"
	}
	load := strings.Fields(read(filepath.Join(proc, "loadavg")))
	if len(load) > 3 {
		load = load[:3]
	}
	return []string{
		fmt.Sprintf("kernel: Linux %s (%s), %s", release, version, preempt),
		fmt.Sprintf("CPUs: %d × %s", runtime.NumCPU(), model),
		fmt.Sprintf("RT limits: %s; sched_rt_runtime_us %s of sched_rt_period_us %s", cgroups,
			read(filepath.Join(proc, "sys/kernel/sched_rt_runtime_us")), read(filepath.Join(proc, "sys/kernel/sched_rt_period_us"))),
		fmt.Sprintf("load average when the page was written: %s (1, 5, 15 min)", strings.Join(load, ", ")),
	}
}
