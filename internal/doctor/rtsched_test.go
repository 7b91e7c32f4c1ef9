package doctor

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
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
		{"v1 with room", nil, OK, "its children hold no RT budget; left for a new container: 950000 µs per 1000000 µs, room for 9 containers at the default 100000 µs"},
		{"v1 children hold the budget", func(f *fakeHost) { f.rtBudget("docker", "900000", "1000000") }, Fail,
			"its children hold /docker 900000/1000000 µs; left for a new container: 50000 µs per 1000000 µs, room for 0 containers"},
		{"v1 child with another period is scaled", func(f *fakeHost) { f.rtBudget("a", "50000", "500000") }, OK,
			"/a 50000/500000 µs; left for a new container: 850000 µs per 1000000 µs, room for 8"},
		{"v1 default budget from the config", func(f *fakeHost) {
			f.write("etc/containerd/rtshim.toml", "[defaults]\nrt_runtime_us = 500000\n[limits]\nmax_rt_runtime_us = 500000\n")
			f.rtBudget("docker", "500000", "1000000")
		}, Fail, "room for 0 containers at the default 500000 µs"},
		{"v1 root without budget", func(f *fakeHost) { f.rtBudget("", "0", "1000000") }, Fail, "left for a new container: 0 µs"},
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

// TestRTGroupSchedAgreesWithGrant: the figure doctor calls left is the shim's own admission,
// cgroupfix.Available, also where the kernel's truncated ratios make the boundary uneven (a
// child at 1/3 of a CPU over an odd period).
func TestRTGroupSchedAgreesWithGrant(t *testing.T) {
	f := goodHost(t)
	f.rtBudget("a", "111111", "333333")
	f.rtBudget("b", "7", "9999")
	cpu := cgroupfix.DirFS{Root: f.path("cgroup/cpu")}
	want, err := (&cgroupfix.Manager{CPU: cpu}).Available(cgroupfix.Claim{Leaf: "/new/c", PeriodUS: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	if want == 0 || want%1000 == 0 {
		t.Fatalf("test tree gives a round %d µs: it would not tell arithmetic apart", want)
	}
	if got := finding(t, Run(f.h), "rt.group-sched"); !strings.Contains(got.Saw, fmt.Sprintf("left for a new container: %d µs per 1000000 µs", want)) {
		t.Errorf("doctor says %q, the shim would admit %d µs", got.Saw, want)
	}
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
