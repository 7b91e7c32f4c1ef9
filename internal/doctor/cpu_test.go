package doctor

import "testing"

func TestCPUGovernor(t *testing.T) {
	runFindingCases(t, "cpu.governor", []findingCase{
		{"performance", nil, OK, "scaling_governor performance on CPU 0-1"},
		{"powersave on one CPU", func(f *fakeHost) {
			f.write("sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave\n")
		}, Warn, "performance on CPU 0; powersave on CPU 1"},
		{"no cpufreq", func(f *fakeHost) {
			f.remove("sys/devices/system/cpu/cpu0/cpufreq")
			f.remove("sys/devices/system/cpu/cpu1/cpufreq")
		}, Info, "no cpufreq scaling_governor"},
	})
}

func TestCStates(t *testing.T) {
	runFindingCases(t, "cpu.cstates", []findingCase{
		{"deep states disabled", nil, OK, "no enabled idle state has an exit latency above 10 µs; enabled: POLL (0 µs), C1 (2 µs)"},
		{"C6 enabled on one CPU", func(f *fakeHost) {
			f.write("sys/devices/system/cpu/cpu1/cpuidle/state2/disable", "0\n")
		}, Warn, "deep idle states enabled: C6 (133 µs) on CPU 1"},
		{"several deep states", func(f *fakeHost) {
			for _, cpu := range []string{"cpu0", "cpu1"} {
				f.write("sys/devices/system/cpu/"+cpu+"/cpuidle/state2/disable", "0\n")
				idle(f, "sys/devices/system/cpu/"+cpu+"/cpuidle/state3", "C3", "40", "0")
			}
		}, Warn, "C3 (40 µs) on CPU 0-1; C6 (133 µs) on CPU 0-1"},
		{"no cpuidle", func(f *fakeHost) {
			f.remove("sys/devices/system/cpu/cpu0/cpuidle")
			f.remove("sys/devices/system/cpu/cpu1/cpuidle")
		}, Info, "no cpuidle states"},
	})
}
