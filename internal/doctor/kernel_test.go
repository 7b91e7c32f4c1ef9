package doctor

import "testing"

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
		{"none", cmdline("root=/dev/sda1 quiet"), Info, "none of isolcpus, nohz_full, rcu_nocbs"},
		{"some", cmdline("isolcpus=2-3 nohz_full=2-3"), Info, "boot parameters isolcpus=2-3 nohz_full=2-3; missing rcu_nocbs"},
		{"init's arguments do not count", cmdline("quiet -- isolcpus=1 nohz_full=1 rcu_nocbs=1"), Info, "none of"},
	})
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
