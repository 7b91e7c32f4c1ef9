package doctor

import (
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/tuning"
)

// holderRecord writes a tuning holder as the shim leaves it in the state dir.
func holderRecord(f *fakeHost, h tuning.Holder) {
	f.t.Helper()
	if err := tuning.WriteHolderForTest(f.path("run/rtshim"), &h); err != nil {
		f.t.Fatal(err)
	}
}

func TestCPUTuning(t *testing.T) {
	runFindingCases(t, "cpu.tuning", []findingCase{
		{"nothing tuned", nil, Info, "every CPU left to the host"},
		{"one container", func(f *fakeHost) {
			f.mountinfo(mountV1CPU, mountV1Mem, mountV2, "40 25 0:40 / @/cgroup/cpuset rw - cgroup cgroup rw,cpuset")
			f.write("cgroup/cpuset/default/a/cgroup.procs", "5\n")
			holderRecord(f, tuning.Holder{Namespace: "default", ID: "a", Leaf: "/default/a", Applied: true,
				Tuning: oci.Tuning{CPUs: "1", Exclusive: true, IRQ: oci.IRQDisable}, Owner: cgroupfix.Owner{PID: 999999, StartTime: 5}})
		}, OK, "CPU 1: exclusive irqs=disable by default/a; CPUs 0 left to the host"},
		{"stale", func(f *fakeHost) {
			f.mountinfo(mountV1CPU, mountV1Mem, mountV2, "40 25 0:40 / @/cgroup/cpuset rw - cgroup cgroup rw,cpuset")
			holderRecord(f, tuning.Holder{Namespace: "default", ID: "gone", Leaf: "/default/gone",
				Tuning: oci.Tuning{CPUs: "1", ResumeLatency: "n/a"}, Owner: cgroupfix.Owner{PID: 999999, StartTime: 5}})
		}, Warn, "CPU 1: resume_latency=n/a by default/gone (stale: its shim and container are gone)"},
	})
}
