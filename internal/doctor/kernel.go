package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rtshim/rtshim/internal/cpulist"
)

func (e *env) preemptRT() Finding {
	f := Finding{ID: "kernel.preempt-rt", Title: "PREEMPT_RT kernel"}
	realtime, _ := readTrim(filepath.Join(e.h.SysRoot, "kernel", "realtime"))
	version, _ := readTrim(filepath.Join(e.h.ProcRoot, "sys", "kernel", "version")) // what uname -v prints
	f.Why = "Only a PREEMPT_RT kernel bounds how long the kernel can keep an RT thread from running; elsewhere " +
		"non-preemptible kernel sections (drivers, softirqs, locks) add wake-up delays of hundreds of µs to ms under load."
	switch {
	case realtime == "1" || strings.Contains(version, "PREEMPT_RT"):
		f.Severity = OK
		f.Saw = "PREEMPT_RT kernel (" + firstNonEmpty(version, "/sys/kernel/realtime is 1") + ")"
	default:
		f.Severity = Warn
		f.Saw = "not a PREEMPT_RT kernel: no /sys/kernel/realtime, uname -v is " + strconv.Quote(version)
		f.Fix = "For hard real-time, boot a PREEMPT_RT kernel (Debian: apt install linux-image-rt-amd64; Ubuntu: " +
			"the realtime kernel of Ubuntu Pro; RHEL: kernel-rt; upstream Linux 6.12+ with CONFIG_PREEMPT_RT=y). " +
			"RT containers run without one, with weaker latency bounds."
	}
	return f
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// isolationParams are the boot parameters that keep the kernel's own work off the CPUs
// reserved for RT threads.
var isolationParams = []string{"isolcpus", "nohz_full", "rcu_nocbs"}

func (e *env) cmdline() map[string]string {
	b, _ := os.ReadFile(filepath.Join(e.h.ProcRoot, "cmdline"))
	out := map[string]string{}
	for _, arg := range strings.Fields(string(b)) {
		if arg == "--" {
			break // the rest belongs to init
		}
		k, v, _ := strings.Cut(arg, "=")
		out[k] = v
	}
	return out
}

func (e *env) cpuIsolation() Finding {
	f := Finding{ID: "cpu.isolation", Title: "CPU isolation (isolcpus, nohz_full, rcu_nocbs)"}
	args := e.cmdline()
	online := e.onlineCPUs()
	var have, missing, absent []string
	for _, p := range isolationParams {
		v, ok := args[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case len(online) > 0 && len(isolatedCPUs(v)) > 0 && !subset(isolatedCPUs(v), online):
			absent = append(absent, p+"="+v)
		default:
			have = append(have, p+"="+v)
		}
	}
	f.Why = "Without isolated CPUs, RT threads share their CPUs with the scheduler tick, RCU callbacks, kernel threads " +
		"and other tasks' migrations, each of which delays a wake-up by µs to tens of µs."
	switch {
	case len(have) == len(isolationParams):
		f.Severity = OK
		f.Saw = "boot parameters " + strings.Join(have, " ")
		return f
	case len(have)+len(absent) == 0:
		f.Severity = Info
		f.Saw = "none of isolcpus, nohz_full, rcu_nocbs on the kernel command line"
	default:
		f.Severity = Info
		var parts []string
		if len(have) > 0 {
			parts = append(parts, "boot parameters "+strings.Join(have, " "))
		}
		if len(absent) > 0 {
			parts = append(parts, strings.Join(absent, " ")+" name CPUs this host does not have")
		}
		if len(missing) > 0 {
			parts = append(parts, "missing "+strings.Join(missing, ", "))
		}
		f.Saw = strings.Join(parts, "; ")
	}
	if len(online) > 0 {
		f.Saw += "; online CPUs " + cpuList(online)
	}
	cores := e.cores(online)
	f.Fix = isolationFix(suggestIsolated(cores, online, args, have), online, len(cores))
	return f
}

// isolationFix is the boot parameters that isolate cpus, and how to pin RT containers there.
func isolationFix(cpus, online []int, cores int) string {
	if len(cpus) == 0 {
		return fmt.Sprintf("This host has %s online, on %s: isolating CPUs needs at least 2 cores, one of them left "+
			"to the kernel's housekeeping. On a bigger host, boot with isolcpus=managed_irq,domain,<CPUs> "+
			"nohz_full=<CPUs> rcu_nocbs=<CPUs> and pin the RT containers there.",
			plural(len(online), "CPU", "CPUs"), plural(cores, "core", "cores"))
	}
	l := cpuList(cpus)
	return "Reserve CPUs for RT containers at boot, e.g. CPU " + l + " of this host's " + cpuList(online) +
		" (CPU " + strconv.Itoa(online[0]) + " stays with the kernel's housekeeping): add isolcpus=managed_irq,domain," + l +
		" nohz_full=" + l + " rcu_nocbs=" + l + " to the kernel command line; then pin the RT containers there " +
		"(cpuset: docker run --cpuset-cpus " + l + ", ctr run --cpuset-cpus " + l + ", or a Kubernetes Guaranteed " +
		"pod with the static CPU manager)."
}

// suggestIsolated is the CPUs to isolate on this host: those an isolation parameter already
// names, when they exist and leave a CPU to the kernel; else the upper half of the cores (the
// SMT siblings of a core together), never the first core. None if the host has one core or
// its CPUs are unknown.
func suggestIsolated(cores [][]int, online []int, args map[string]string, have []string) []int {
	if len(cores) < 2 {
		return nil
	}
	for _, kv := range have {
		k, _, _ := strings.Cut(kv, "=")
		if cpus := isolatedCPUs(args[k]); len(cpus) > 0 && len(cpus) < len(online) {
			return cpus
		}
	}
	var out []int
	for _, c := range cores[len(cores)-len(cores)/2:] {
		out = append(out, c...)
	}
	sort.Ints(out)
	return out
}

// onlineCPUs is the CPUs the kernel runs: devices/system/cpu/online, else the cpuN
// directories. nil if neither can be read.
func (e *env) onlineCPUs() []int {
	if s, err := readTrim(filepath.Join(e.cpuDir(), "online")); err == nil {
		if cpus, err := cpulist.Parse(s); err == nil && len(cpus) > 0 {
			return cpus
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(e.cpuDir(), "cpu[0-9]*"))
	var cpus []int
	for _, d := range dirs {
		if n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "cpu")); err == nil {
			cpus = append(cpus, n)
		}
	}
	sort.Ints(cpus)
	return cpus
}

// cores groups the online CPUs by core (topology/thread_siblings_list; a CPU without one is a
// core of its own), ordered by each core's first CPU.
func (e *env) cores(online []int) [][]int {
	isOnline := map[int]bool{}
	for _, c := range online {
		isOnline[c] = true
	}
	seen := map[int]bool{}
	var out [][]int
	for _, c := range online {
		if seen[c] {
			continue
		}
		core := []int{c}
		if s, err := readTrim(filepath.Join(e.cpuDir(), "cpu"+strconv.Itoa(c), "topology", "thread_siblings_list")); err == nil {
			if sib, err := cpulist.Parse(s); err == nil && slices.Contains(sib, c) {
				core = slices.DeleteFunc(sib, func(x int) bool { return !isOnline[x] || seen[x] })
			}
		}
		for _, x := range core {
			seen[x] = true
		}
		out = append(out, core)
	}
	return out
}

// isolatedCPUs is the CPU list of an isolation parameter's value: isolcpus takes flags before
// it ("managed_irq,domain,2-3"); "" or an unparsable list gives nil.
func isolatedCPUs(v string) []int {
	var list []string
	for _, part := range strings.Split(v, ",") {
		if part != "" && part[0] >= '0' && part[0] <= '9' {
			list = append(list, part)
		}
	}
	cpus, err := cpulist.Parse(strings.Join(list, ","))
	if err != nil {
		return nil
	}
	return cpus
}

// subset reports whether every CPU of a is in b.
func subset(a, b []int) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// irqBalance warns about irqbalance only when nothing keeps it off the RT CPUs: a banned CPU
// list in its environment, or isolated CPUs on the command line (which irqbalance honours).
func (e *env) irqBalance() Finding {
	f := Finding{ID: "irq.balance", Title: "irqbalance"}
	pids := e.procs["irqbalance"]
	f.Why = "irqbalance moves device interrupts between CPUs, onto the ones running RT threads too; an interrupt " +
		"handler on an RT CPU delays the RT thread."
	if len(pids) == 0 {
		f.Severity, f.Saw = OK, "irqbalance is not running"
		return f
	}
	banned := bannedCPUs(filepath.Join(e.h.ProcRoot, strconv.Itoa(pids[0]), "environ"))
	args := e.cmdline()
	f.Saw = fmt.Sprintf("irqbalance is running (pid %d)", pids[0])
	switch {
	case banned != "":
		f.Severity = Info
		f.Saw += " with " + banned
	case args["isolcpus"] != "" || args["nohz_full"] != "":
		f.Severity = Info
		f.Saw += ", and the kernel command line isolates CPUs (isolcpus/nohz_full), which irqbalance leaves alone"
		f.Fix = "Check that no interrupt lands on the RT CPUs: watch their columns in /proc/interrupts."
	default:
		f.Severity = Warn
		f.Saw += " and no CPU is banned or isolated"
		f.Fix = "Keep interrupts off the RT CPUs: set IRQBALANCE_BANNED_CPULIST=<RT CPUs> in /etc/default/irqbalance " +
			"(/etc/sysconfig/irqbalance on RHEL) and restart irqbalance, or stop it (systemctl disable --now irqbalance) " +
			"and set /proc/irq/*/smp_affinity_list yourself."
	}
	return f
}

// bannedCPUs reads irqbalance's ban list from its environment ("" if none or unreadable).
func bannedCPUs(environ string) string {
	b, err := os.ReadFile(environ)
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		if (k == "IRQBALANCE_BANNED_CPULIST" || k == "IRQBALANCE_BANNED_CPUS") && v != "" {
			return kv
		}
	}
	return ""
}
