package shim

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// locateCgroup runs after the stock Create, while the init is paused. On cgroup v2 it reads the
// init's cgroup from /proc/<pid>/cgroup and makes the container's claim (and with it the pod's
// quota exemption) follow that cgroup wherever linux.cgroupsPath pointed elsewhere. On cgroup v1
// the budgets had to be in place before runc create, so there is nothing to move.
func (s *Service) locateCgroup(ctx context.Context, id string, c *rtContainer) error {
	if c.cgroups == nil || !c.cgroups.V2 || !c.req.NeedsBudget() {
		return nil // only real-time containers hold a claim
	}
	leaf, err := cgroupfix.ProcCgroupV2(s.host.ProcRoot, c.pid)
	if err == nil {
		_, err = c.cgroups.LocateV2(ctx, c.namespace, id, leaf)
	}
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, id, err)
	}
	log.G(ctx).WithField("cgroup", leaf).Debug("container cgroup from /proc")
	return nil
}

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
