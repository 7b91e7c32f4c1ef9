package doctor

import (
	"fmt"
	"strings"
	"testing"
)

func TestPreemptRT(t *testing.T) {
	runFindingCases(t, "kernel.preempt-rt", []findingCase{
		{"realtime", nil, OK, "PREEMPT_RT kernel (#1 SMP PREEMPT_RT"},
		{"uname only", func(f *fakeHost) { f.remove("sys/kernel/realtime") }, OK, "PREEMPT_RT kernel"},
		{"not RT", func(f *fakeHost) {
			f.remove("sys/kernel/realtime")
			f.write("proc/sys/kernel/version", "#1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1\n")
		}, Warn, `not a PREEMPT_RT kernel: no /sys/kernel/realtime, uname -v is "#1 SMP PREEMPT_DYNAMIC Debian 6.12.57-1"`},
	})
}

func TestCPUIsolation(t *testing.T) {
	cmdline := func(s string) func(*fakeHost) { return func(f *fakeHost) { f.write("proc/cmdline", s+"\n") } }
	runFindingCases(t, "cpu.isolation", []findingCase{
		{"all three", nil, OK, "boot parameters isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1"},
		{"none", cmdline("root=/dev/sda1 quiet"), Info, "none of isolcpus, nohz_full, rcu_nocbs on the kernel command line; online CPUs 0-1"},
		{"some", cmdline("isolcpus=1 nohz_full=1"), Info, "boot parameters isolcpus=1 nohz_full=1; missing rcu_nocbs"},
		{"CPUs the host does not have", cmdline("isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3"), Info,
			"isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3 name CPUs this host does not have; online CPUs 0-1"},
		{"init's arguments do not count", cmdline("quiet -- isolcpus=1 nohz_full=1 rcu_nocbs=1"), Info, "none of"},
	})
}

// TestCPUIsolationFix: the suggested CPUs exist on the host, leave its first core to the
// kernel, and keep a core's SMT siblings together.
func TestCPUIsolationFix(t *testing.T) {
	cpus := func(online string, n int, siblings ...string) func(*fakeHost) {
		return func(f *fakeHost) {
			f.remove("sys/devices/system/cpu")
			if online != "" {
				f.write("sys/devices/system/cpu/online", online+"\n")
			}
			for i := range n {
				f.mkdir(fmt.Sprintf("sys/devices/system/cpu/cpu%d", i))
				if i < len(siblings) {
					f.write(fmt.Sprintf("sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", i), siblings[i]+"\n")
				}
			}
		}
	}
	for _, tc := range []struct {
		name    string
		cmdline string
		setup   func(*fakeHost)
		fix     string // substring of Fix
	}{
		{"2 CPUs", "quiet", nil, "e.g. CPU 1 of this host's 0-1 (CPU 0 stays with the kernel's housekeeping): add " +
			"isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1 to the kernel command line; then pin the RT containers " +
			"there (cpuset: docker run --cpuset-cpus 1, ctr run --cpuset-cpus 1,"},
		{"4 CPUs, no topology", "quiet", cpus("0-3", 4), "isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3"},
		{"no online file", "quiet", cpus("", 4), "e.g. CPU 2-3 of this host's 0-3"},
		{"8 CPUs on 4 cores", "quiet", cpus("0-7", 8, "0,4", "1,5", "2,6", "3,7", "0,4", "1,5", "2,6", "3,7"),
			"isolcpus=managed_irq,domain,2-3,6-7 nohz_full=2-3,6-7 rcu_nocbs=2-3,6-7"},
		{"3 CPUs", "quiet", cpus("0-2", 3), "e.g. CPU 2 of this host's 0-2"},
		{"6 CPUs, one offline", "quiet", cpus("0-4", 6), "e.g. CPU 3-4 of this host's 0-4"},
		{"the CPUs a parameter names", "isolcpus=managed_irq,domain,3 nohz_full=3", cpus("0-3", 4), "isolcpus=managed_irq,domain,3 nohz_full=3 rcu_nocbs=3"},
		{"a parameter naming absent CPUs", "isolcpus=2-3", nil, "isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1"},
		{"one CPU", "quiet", cpus("0", 1), "This host has 1 CPU online, on 1 core: isolating CPUs needs at least 2 cores"},
		{"one core, two threads", "quiet", cpus("0-1", 2, "0-1", "0-1"), "This host has 2 CPUs online, on 1 core:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := goodHost(t)
			f.write("proc/cmdline", tc.cmdline+"\n")
			if tc.setup != nil {
				tc.setup(f)
			}
			got := finding(t, Run(f.h), "cpu.isolation")
			if got.Severity != Info || !strings.Contains(got.Fix, tc.fix) {
				t.Errorf("got %s, fix %q\nwant info with %q", got.Severity, got.Fix, tc.fix)
			}
		})
	}
}

func TestIRQBalance(t *testing.T) {
	irqbalance := func(environ string) func(*fakeHost) {
		return func(f *fakeHost) {
			f.write("proc/77/comm", "irqbalance\n")
			f.write("proc/77/environ", environ)
			f.write("proc/cmdline", "quiet\n")
		}
	}
	runFindingCases(t, "irq.balance", []findingCase{
		{"not running", nil, OK, "irqbalance is not running"},
		{"running unrestricted", irqbalance("PATH=/bin\x00"), Warn, "irqbalance is running (pid 77) and no CPU is banned or isolated"},
		{"running with a ban list", irqbalance("PATH=/bin\x00IRQBALANCE_BANNED_CPULIST=2-3\x00"), Info, "with IRQBALANCE_BANNED_CPULIST=2-3"},
		{"running with isolated CPUs", func(f *fakeHost) {
			irqbalance("")(f)
			f.write("proc/cmdline", "nohz_full=1\n")
		}, Info, "isolates CPUs"},
	})
}
