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
	"github.com/rtshim/rtshim/oci"
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

// rtGroupSchedV1 reports what the root cgroup has left for new containers: its budget minus
// what its children hold. Only the root's direct children count: the kernel checks each level
// against its parent, and rtshim raises the levels below out of the root's remainder.
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
	period, err2 := readInt(filepath.Join(mount, "cpu.rt_period_us"))
	if err != nil || err1 != nil || err2 != nil || period <= 0 {
		f.Severity = Fail
		f.Saw = fmt.Sprintf("cannot read the root RT budget in %s: %v", mount, errors.Join(err, err1, err2))
		f.Why = "rtshim grants every RT container's budget out of the root cgroup's."
		f.Fix = "Run rtshim doctor as root on the host, where " + mount + " is readable."
		return f
	}
	def := defaultBudget(e.config(), period)
	if runtime < 0 {
		f.Severity = Info
		f.Saw = fmt.Sprintf("root cpu.rt_runtime_us=-1 (unlimited) in %s", mount)
		f.Why = "With kernel.sched_rt_runtime_us=-1 the root budget is unlimited, so budgets are never refused for lack " +
			"of room; but nothing stops a runaway RT task either (see rt.throttling)."
		return f
	}
	holders, held := childBudgets(cpu, period)
	left := runtime - held
	f.Saw = fmt.Sprintf("root cpu.rt_runtime_us=%d per cpu.rt_period_us=%d in %s; its children hold %d µs%s; "+
		"left for new containers: %d µs, room for %s at the default %d µs",
		runtime, period, mount, held, holdersText(holders), max(left, 0), plural(int(max(left, 0)/def), "container", "containers"), def)
	f.Why = "With cgroup v1 RT group scheduling every new cgroup starts with cpu.rt_runtime_us=0 (SCHED_FIFO fails " +
		"with EPERM there, even in a privileged container), and a parent's budget bounds the sum of its children's. " +
		"rtshim grants each RT container its budget out of what the root has left, or refuses Create."
	if left >= def {
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

type holder struct {
	name    string
	runtime int64 // scaled to the root's period
}

// childBudgets sums the root's children's budgets over the root's period, rounding up as the
// kernel's own ratio check effectively does.
func childBudgets(cpu cgroupfix.DirFS, period int64) ([]holder, int64) {
	names, _ := cpu.Children("/")
	var hs []holder
	var sum int64
	for _, n := range names {
		rt, err1 := readInt(filepath.Join(cpu.Root, n, "cpu.rt_runtime_us"))
		p, err2 := readInt(filepath.Join(cpu.Root, n, "cpu.rt_period_us"))
		if err1 != nil || err2 != nil || rt == 0 || p <= 0 {
			continue
		}
		scaled := period
		if rt > 0 {
			scaled = (rt*period + p - 1) / p
		}
		hs = append(hs, holder{"/" + n, scaled})
		sum += scaled
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].runtime > hs[j].runtime })
	return hs, sum
}

func holdersText(hs []holder) string {
	if len(hs) == 0 {
		return ""
	}
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s %d", h.name, h.runtime))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// defaultBudget is the budget a container gets when it asks for none, over the root's period.
func defaultBudget(cfg *oci.Config, period int64) int64 {
	d := cfg.Defaults
	if d.RTPeriodUS <= 0 {
		return d.RTRuntimeUS
	}
	return max((d.RTRuntimeUS*period+d.RTPeriodUS-1)/d.RTPeriodUS, 1)
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
