package doctor

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// deepStateLatencyUS is the exit latency above which an idle state counts as deep: C1 (about
// 1-2 µs) is harmless, C1E (about 10 µs) is borderline, C3/C6 (tens to 100+ µs) are added
// in full to the wake-up of an RT thread whose CPU was idle.
const deepStateLatencyUS = 10

func (e *env) cpuDir() string { return filepath.Join(e.h.SysRoot, "devices", "system", "cpu") }

func (e *env) cpuGovernor() Finding {
	f := Finding{ID: "cpu.governor", Title: "CPU frequency governor"}
	files, _ := filepath.Glob(filepath.Join(e.cpuDir(), "cpu[0-9]*", "cpufreq", "scaling_governor"))
	byGov := map[string][]int{}
	for _, p := range files {
		if g, err := readTrim(p); err == nil {
			byGov[g] = append(byGov[g], cpuNumber(p))
		}
	}
	f.Why = "Other governors lower the clock of idle CPUs; an RT thread that wakes on one runs slower until the " +
		"frequency ramps up, and the ramp itself stalls the CPU."
	if len(byGov) == 0 {
		f.Severity = Info
		f.Saw = "no cpufreq scaling_governor under " + e.cpuDir() + ": the kernel does not control the frequency " +
			"(virtual machine, or the firmware does)"
		f.Fix = "On bare metal, check the firmware (BIOS) power settings: set maximum performance and disable " +
			"frequency scaling there."
		return f
	}
	var govs, slow []string
	for g, cpus := range byGov {
		govs = append(govs, fmt.Sprintf("%s on CPU %s", g, cpuList(cpus)))
		if g != "performance" {
			slow = append(slow, g)
		}
	}
	sort.Strings(govs)
	f.Saw = "scaling_governor " + strings.Join(govs, "; ")
	if len(slow) == 0 {
		f.Severity = OK
		return f
	}
	f.Severity = Warn
	f.Fix = "Set the performance governor on the RT CPUs (or all): cpupower frequency-set -g performance, or " +
		"echo performance | tee " + filepath.Join(e.cpuDir(), "cpu*", "cpufreq", "scaling_governor") +
		"; persist it with your distribution's tool (tuned profile realtime, cpufrequtils)."
	return f
}

// idleState is one cpuidle state as configured on one CPU.
type idleState struct {
	name    string
	latency int64 // exit latency, µs
}

func (e *env) cStates() Finding {
	f := Finding{ID: "cpu.cstates", Title: "CPU idle states (C-states)"}
	dirs, _ := filepath.Glob(filepath.Join(e.cpuDir(), "cpu[0-9]*", "cpuidle", "state[0-9]*"))
	deep := map[idleState][]int{} // enabled deep states → CPUs
	var shallow []string
	seen := map[idleState]bool{}
	for _, d := range dirs {
		name, err1 := readTrim(filepath.Join(d, "name"))
		lat, err2 := readInt(filepath.Join(d, "latency"))
		disabled, _ := readTrim(filepath.Join(d, "disable"))
		if err1 != nil || err2 != nil {
			continue
		}
		s := idleState{name, lat}
		switch {
		case disabled == "1":
		case lat > deepStateLatencyUS:
			deep[s] = append(deep[s], cpuNumber(d))
		case !seen[s]:
			shallow = append(shallow, fmt.Sprintf("%s (%d µs)", name, lat))
		}
		seen[s] = true
	}
	f.Why = "A CPU in a deep idle state takes its exit latency to wake up; that delay adds to every wake-up of an RT " +
		"thread whose CPU went idle (typically 50-200 µs for C6)."
	if len(seen) == 0 {
		f.Severity = Info
		f.Saw = "no cpuidle states under " + e.cpuDir() + ": idle is handled by the default idle loop, the firmware " +
			"or the hypervisor"
		f.Fix = "On bare metal, check the firmware (BIOS) settings: disable deep C-states (C3 and deeper) there."
		return f
	}
	if len(deep) == 0 {
		f.Severity = OK
		f.Saw = fmt.Sprintf("no enabled idle state has an exit latency above %d µs; enabled: %s",
			deepStateLatencyUS, strings.Join(shallow, ", "))
		return f
	}
	states := make([]idleState, 0, len(deep))
	for s := range deep {
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool { return states[i].latency < states[j].latency })
	var parts []string
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%s (%d µs) on CPU %s", s.name, s.latency, cpuList(deep[s])))
	}
	f.Severity = Warn
	f.Saw = "deep idle states enabled: " + strings.Join(parts, "; ")
	f.Fix = "Disable the deep states on the RT CPUs: for s in " + filepath.Join(e.cpuDir(), "cpu*", "cpuidle", "state*") +
		"; do [ $(cat $s/latency) -gt " + strconv.Itoa(deepStateLatencyUS) + " ] && echo 1 > $s/disable; done " +
		"(or boot with intel_idle.max_cstate=1 processor.max_cstate=1; or hold /dev/cpu_dma_latency open with a low " +
		"value while the RT application runs)."
	return f
}
