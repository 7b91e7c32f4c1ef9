package doctor

import (
	"bytes"
	"compress/gzip"
	"testing"
)

func (f *fakeHost) kernelConfigGz(config string) {
	f.t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte(config))
	z.Close()
	f.write("proc/config.gz", b.String())
}

func TestRTGroupSched(t *testing.T) {
	v2 := func(config string) func(*fakeHost) {
		return func(f *fakeHost) {
			f.mountinfo(mountV2All)
			if config != "" {
				f.kernelConfigGz(config)
			}
		}
	}
	runFindingCases(t, "rt.group-sched", []findingCase{
		{"v1 with room", nil, OK, "its children hold 0 µs; left for new containers: 950000 µs, room for 9 containers at the default 100000 µs"},
		{"v1 children hold the budget", func(f *fakeHost) { f.rtBudget("docker", "900000", "1000000") }, Fail,
			"its children hold 900000 µs (/docker 900000); left for new containers: 50000 µs, room for 0 containers"},
		{"v1 child with another period is scaled", func(f *fakeHost) { f.rtBudget("a", "50000", "500000") }, OK,
			"(/a 100000); left for new containers: 850000 µs, room for 8"},
		{"v1 default budget from the config", func(f *fakeHost) {
			f.write("etc/containerd/rtshim.toml", "[defaults]\nrt_runtime_us = 500000\n")
			f.rtBudget("docker", "500000", "1000000")
		}, Fail, "room for 0 containers at the default 500000 µs"},
		{"v1 root without budget", func(f *fakeHost) { f.rtBudget("", "0", "1000000") }, Fail, "left for new containers: 0 µs"},
		{"v1 unlimited", func(f *fakeHost) { f.rtBudget("", "-1", "1000000") }, Info, "root cpu.rt_runtime_us=-1 (unlimited)"},
		{"v1 without RT group scheduling", func(f *fakeHost) { f.remove("cgroup/cpu/cpu.rt_runtime_us") }, OK, "CONFIG_RT_GROUP_SCHED off"},
		{"v2 refuses RT", v2("CONFIG_RT_GROUP_SCHED=y\n"), Fail, "CONFIG_RT_GROUP_SCHED=y, and the kernel was not booted with rt_group_sched=0"},
		{"v2 disabled at boot", func(f *fakeHost) {
			v2("CONFIG_RT_GROUP_SCHED=y\n")(f)
			f.write("proc/cmdline", "rt_group_sched=0\n")
		}, OK, "kernel allows RT tasks in child cgroups"},
		{"v2 without RT group scheduling", v2("CONFIG_PREEMPT_RT=y\n"), OK, "kernel allows RT tasks"},
		{"v2 config in /boot", func(f *fakeHost) {
			v2("")(f)
			f.write("proc/sys/kernel/osrelease", "6.12.0-rt\n")
			f.write("boot/config-6.12.0-rt", "CONFIG_RT_GROUP_SCHED=y\n")
		}, Fail, "CONFIG_RT_GROUP_SCHED=y"},
		{"v2 config unknown", v2(""), Info, "kernel config not found"},
		{"no cpu controller", func(f *fakeHost) { f.mountinfo(mountV1Mem) }, Info, "skipped"},
	})
}

func TestRTThrottling(t *testing.T) {
	runtime := func(v string) func(*fakeHost) {
		return func(f *fakeHost) { f.write("proc/sys/kernel/sched_rt_runtime_us", v+"\n") }
	}
	runFindingCases(t, "rt.throttling", []findingCase{
		{"default", nil, OK, "kernel.sched_rt_runtime_us=950000 of sched_rt_period_us=1000000: RT tasks may use 95.0% of each CPU"},
		{"no throttling", runtime("-1"), Warn, "kernel.sched_rt_runtime_us=-1 (no RT throttling)"},
		{"no RT time", runtime("0"), Fail, "kernel.sched_rt_runtime_us=0"},
		{"unreadable", func(f *fakeHost) { f.remove("proc/sys/kernel/sched_rt_period_us") }, Info, "cannot read the RT limits"},
	})
}
