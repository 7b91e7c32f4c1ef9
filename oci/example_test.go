package oci_test

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/oci"
)

// A Kubernetes pod asks for SCHED_FIFO for all its containers and priority 80 for the one
// named "ctl"; the shim parses the request and rewrites the spec before runc create.
func ExampleParseRequest() {
	spec := &specs.Spec{
		Annotations: map[string]string{
			"io.kubernetes.cri.container-name":   "ctl",
			"rtshim.io/policy":                   "fifo",
			"rtshim.io/priority.container.ctl":   "80",
			"rtshim.io/priority.container.other": "10",
		},
		Process: &specs.Process{Env: []string{"RTSHIM_PRIORITY=20"}},
		Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{
			Quota: new(int64(50000)),
		}}},
	}
	r, err := oci.ParseRequest(spec, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s priority %d, %s mode, budget %dus/%dus, quota %s, exec %s\n",
		r.Sched.Policy, r.Sched.Priority, r.Mode, r.RTRuntimeUS, r.RTPeriodUS, r.CPUQuota, r.Exec.Policy)

	oci.PrepareSpec(spec, r, true)
	cpu := spec.Linux.Resources.CPU
	fmt.Printf("process.scheduler %s/%d, realtimeRuntime %d, quota removed: %v\n",
		spec.Process.Scheduler.Policy, spec.Process.Scheduler.Priority, *cpu.RealtimeRuntime, cpu.Quota == nil)

	spec.Annotations["rtshim.io/priority.container.ctl"] = "150"
	_, err = oci.ParseRequest(spec, nil)
	fmt.Println(err)
	// Output:
	// SCHED_FIFO priority 80, apply mode, budget 100000us/1000000us, quota disable, exec SCHED_OTHER
	// process.scheduler SCHED_FIFO/80, realtimeRuntime 100000, quota removed: true
	// invalid argument: rtshim.io/priority.container.ctl="150": must be an integer from 1 to 90 (limits.max_priority is 90)
}
