package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rtshim/rtshim/cgroupfix"
)

func (e *env) rtGroupSched() Finding {
	f := Finding{ID: "rt.group-sched", Title: "RT group scheduling"}
	m := e.mounts
	switch {
	case m.err != nil || m.cpuErr != nil:
		f.Severity, f.Saw = Info, "skipped: no cpu controller found (see cgroup.version)"
		f.Why = "Whether containers can get RT time depends on the cpu controller's hierarchy."
		return f
	case m.cpu.V2:
		return e.rtGroupSchedV2(f)
	}
	return e.rtGroupSchedV1(f, m.cpu.Mount)
}

// rtGroupSchedV1 reports what a new container could be granted now, worked out by the shim's
// own admission (cgroupfix.Available), and which of the root's children hold the budget.
func (e *env) rtGroupSchedV1(f Finding, mount string) Finding {
	cpu := cgroupfix.DirFS{Root: mount}
	rootRT, err := cpu.ReadFile("/", "cpu.rt_runtime_us")
	if errors.Is(err, fs.ErrNotExist) {
		f.Severity = OK
		f.Saw = fmt.Sprintf("no cpu.rt_runtime_us in %s: the kernel has no RT group scheduling (CONFIG_RT_GROUP_SCHED off)", mount)
		f.Why = "RT tasks run in any cgroup without a budget; rtshim only sets the policy and lifts the CFS quota."
		return f
	}
	runtime, err1 := strconv.ParseInt(rootRT, 10, 64)
	period, err2 := cgroupfix.ReadInt(cpu, "/", "cpu.rt_period_us")
	if err != nil || err1 != nil || err2 != nil || period <= 0 {
		f.Severity = Fail
		f.Saw = fmt.Sprintf("cannot read the root RT budget in %s: %v", mount, errors.Join(err, err1, err2))
		f.Why = "rtshim grants every RT container's budget out of the root cgroup's."
		f.Fix = "Run rtshim doctor as root on the host, where " + mount + " is readable."
		return f
	}
	d := e.config().Defaults
	if runtime < 0 {
		f.Severity = Info
		f.Saw = fmt.Sprintf("root cpu.rt_runtime_us=-1 (unlimited) in %s", mount)
		f.Why = "With kernel.sched_rt_runtime_us=-1 the root budget is unlimited, so budgets are never refused for lack " +
			"of room; but nothing stops a runaway RT task either (see rt.throttling)."
		return f
	}
	holders := childBudgets(cpu)
	// What a new container gets is what the shim's own grant would admit (cgroupfix.Available):
	// a container in a cgroup of its own below the root, as ctr and Docker make them.
	cg := &cgroupfix.Manager{CPU: cpu}
	left, err := cg.Available(cgroupfix.Claim{Leaf: probeLeaf, PeriodUS: d.RTPeriodUS})
	if err != nil {
		f.Severity = Fail
		f.Saw = fmt.Sprintf("cannot work out the RT budget left in %s: %v", mount, err)
		f.Why = "rtshim grants every RT container's budget out of the root cgroup's."
		f.Fix = "Run rtshim doctor as root on the host, where " + mount + " is readable."
		return f
	}
	f.Saw = fmt.Sprintf("root cpu.rt_runtime_us=%d per cpu.rt_period_us=%d in %s; its children hold %s; "+
		"left for a new container: %d µs per %d µs, room for %s at the default %d µs",
		runtime, period, mount, holdersText(holders), left, d.RTPeriodUS,
		plural(int(left/d.RTRuntimeUS), "container", "containers"), d.RTRuntimeUS)
	f.Why = "With cgroup v1 RT group scheduling every new cgroup starts with cpu.rt_runtime_us=0 (SCHED_FIFO fails " +
		"with EPERM there, even in a privileged container), and a parent's budget bounds the sum of its children's. " +
		"rtshim grants each RT container its budget out of what the root has left, or refuses Create."
	if left >= d.RTRuntimeUS {
		f.Severity = OK
		return f
	}
	f.Severity = Fail
	var fix []string
	if len(holders) > 0 {
		fix = append(fix, fmt.Sprintf("Give back budget the cgroups above do not use (their own children first): "+
			"echo 0 > %s/cpu.rt_runtime_us; RT containers that rtshim runs are listed by rtshim status.",
			filepath.Join(mount, holders[0].name)))
	}
	if runtime < period*95/100 {
		fix = append(fix, "Raise the host's RT share: sysctl -w kernel.sched_rt_runtime_us=950000 (persist it in /etc/sysctl.d/).")
	}
	fix = append(fix, "Or ask for less: lower defaults.rt_runtime_us in the rtshim config, or set rtshim.io/rt-runtime-us per container.")
	f.Fix = strings.Join(fix, " ")
	return f
}

// probeLeaf is where doctor asks how much a new container could get: a cgroup that does not
// exist, below a new one of the root, as a new ctr namespace or Docker's first container.
const probeLeaf = "/rtshim-doctor-probe/container"

type holder struct {
	name            string
	runtime, period int64
}

// childBudgets lists the root's children that hold RT runtime, largest first.
func childBudgets(cpu cgroupfix.DirFS) []holder {
	names, _ := cpu.Children("/")
	var hs []holder
	for _, n := range names {
		rt, err1 := cgroupfix.ReadInt(cpu, "/"+n, "cpu.rt_runtime_us")
		p, err2 := cgroupfix.ReadInt(cpu, "/"+n, "cpu.rt_period_us")
		if err1 != nil || err2 != nil || rt == 0 || p <= 0 {
			continue
		}
		hs = append(hs, holder{"/" + n, rt, p})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].runtime*hs[j].period > hs[j].runtime*hs[i].period })
	return hs
}

func holdersText(hs []holder) string {
	if len(hs) == 0 {
		return "no RT budget"
	}
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s %d/%d µs", h.name, h.runtime, h.period))
	}
	return strings.Join(parts, ", ")
}

func (e *env) rtGroupSchedV2(f Finding) Finding {
	refused, fix := cgroupfix.V2RefusesRT(e.h.ProcRoot, e.h.BootDir)
	release, _ := readTrim(filepath.Join(e.h.ProcRoot, "sys", "kernel", "osrelease"))
	bootConfig := filepath.Join(e.h.BootDir, "config-"+release)
	known := exists(filepath.Join(e.h.ProcRoot, "config.gz")) || release != "" && exists(bootConfig)
	f.Why = "cgroup v2 has no RT budgets: a kernel with CONFIG_RT_GROUP_SCHED=y active refuses SCHED_FIFO/RR in every " +
		"non-root cgroup, i.e. in every container."
	switch {
	case refused:
		f.Severity, f.Fix = Fail, fix
		f.Saw = "kernel config has CONFIG_RT_GROUP_SCHED=y, and the kernel was not booted with rt_group_sched=0"
	case !known:
		f.Severity = Info
		f.Saw = fmt.Sprintf("kernel config not found (%s, %s): cannot tell whether RT_GROUP_SCHED is active",
			filepath.Join(e.h.ProcRoot, "config.gz"), bootConfig)
		f.Fix = "Load the configs module (modprobe configs) or install the kernel's config file, then run rtshim doctor " +
			"again; an RT container that fails with EPERM on this host means RT_GROUP_SCHED is active."
	default:
		f.Severity = OK
		f.Saw = "kernel allows RT tasks in child cgroups (CONFIG_RT_GROUP_SCHED off, or disabled at boot)"
	}
	return f
}

func (e *env) rtThrottling() Finding {
	f := Finding{ID: "rt.throttling", Title: "RT throttling (sched_rt_runtime_us)"}
	dir := filepath.Join(e.h.ProcRoot, "sys", "kernel")
	runtime, err1 := readInt(filepath.Join(dir, "sched_rt_runtime_us"))
	period, err2 := readInt(filepath.Join(dir, "sched_rt_period_us"))
	fix := "sysctl -w kernel.sched_rt_runtime_us=950000, and persist it: " +
		"echo kernel.sched_rt_runtime_us=950000 > /etc/sysctl.d/90-rt.conf"
	switch {
	case err1 != nil || err2 != nil || period <= 0:
		f.Severity = Info
		f.Saw = fmt.Sprintf("cannot read the RT limits: %v", errors.Join(err1, err2))
		f.Why = "kernel.sched_rt_runtime_us bounds how much of each CPU RT tasks may take."
	case runtime < 0:
		f.Severity = Warn
		f.Saw = fmt.Sprintf("kernel.sched_rt_runtime_us=-1 (no RT throttling), sched_rt_period_us=%d", period)
		f.Why = "A runaway SCHED_FIFO thread then keeps its CPU forever: nothing else runs there, not even the kernel " +
			"threads or the shell needed to kill it. The default keeps 5% of each CPU for everything else."
		f.Fix = fix
	case runtime == 0:
		f.Severity = Fail
		f.Saw = fmt.Sprintf("kernel.sched_rt_runtime_us=0 of sched_rt_period_us=%d", period)
		f.Why = "RT tasks get no CPU time at all; with RT group scheduling, setting SCHED_FIFO/RR fails with EPERM."
		f.Fix = fix
	default:
		f.Severity = OK
		f.Saw = fmt.Sprintf("kernel.sched_rt_runtime_us=%d of sched_rt_period_us=%d: RT tasks may use %.1f%% of each CPU",
			runtime, period, float64(runtime)*100/float64(period))
		f.Why = "RT throttling keeps a share of each CPU for SCHED_OTHER, so a runaway RT thread cannot lock up the host."
	}
	return f
}
