package rtcontainer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// checkDeadlineV2 refuses, before anything is changed, a SCHED_DEADLINE container whose CPUs
// (linux.resources.cpu.cpus, e.g. from Kubernetes' static CPU manager) do not span its root
// domain: runc would fail with a bare "operation not permitted".
func checkDeadlineV2(cg *cgroupfix.Manager, spec *specs.Spec, req *oci.Request, leaf string) error {
	if req.Sched.Policy != oci.PolicyDeadline || spec.Linux == nil || spec.Linux.Resources == nil ||
		spec.Linux.Resources.CPU == nil {
		return nil
	}
	return cg.DeadlineDomainV2(leaf, spec.Linux.Resources.CPU.Cpus)
}
