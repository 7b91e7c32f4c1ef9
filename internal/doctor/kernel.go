package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	var have, missing []string
	for _, p := range isolationParams {
		if v, ok := args[p]; ok {
			have = append(have, p+"="+v)
		} else {
			missing = append(missing, p)
		}
	}
	f.Why = "Without isolated CPUs, RT threads share their CPUs with the scheduler tick, RCU callbacks, kernel threads " +
		"and other tasks' migrations, each of which delays a wake-up by µs to tens of µs."
	f.Fix = "Reserve CPUs for RT containers at boot, e.g. for CPUs 2-3: isolcpus=managed_irq,domain,2-3 " +
		"nohz_full=2-3 rcu_nocbs=2-3; then pin the RT containers there (cpuset: docker run --cpuset-cpus 2-3, " +
		"ctr run --cpuset-cpus 2-3, or a Kubernetes Guaranteed pod with the static CPU manager)."
	switch {
	case len(missing) == 0:
		f.Severity, f.Fix = OK, ""
		f.Saw = "boot parameters " + strings.Join(have, " ")
	case len(have) == 0:
		f.Severity = Info
		f.Saw = "none of isolcpus, nohz_full, rcu_nocbs on the kernel command line"
	default:
		f.Severity = Info
		f.Saw = fmt.Sprintf("boot parameters %s; missing %s", strings.Join(have, " "), strings.Join(missing, ", "))
	}
	return f
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
