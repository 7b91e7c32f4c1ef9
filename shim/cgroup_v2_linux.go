package shim

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/rtshim/rtshim/cgroupfix"
)

// locateCgroup runs after the stock Create, while the init is paused. On cgroup v2 it reads the
// init's cgroup from /proc/<pid>/cgroup and makes the container's claim (and with it the pod's
// quota exemption) follow that cgroup wherever linux.cgroupsPath pointed elsewhere. On cgroup v1
// the budgets had to be in place before runc create, so there is nothing to move.
func (s *Service) locateCgroup(ctx context.Context, id string, c *rtContainer) error {
	if c.Cgroups == nil || !c.Cgroups.V2 || !c.Req.NeedsBudget() {
		return nil // only real-time containers hold a claim
	}
	leaf, err := cgroupfix.ProcCgroupV2(s.host.ProcRoot, c.Pid)
	if err == nil {
		_, err = c.Cgroups.LocateV2(ctx, c.Namespace, id, leaf)
	}
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, id, err)
	}
	log.G(ctx).WithField("cgroup", leaf).Debug("container cgroup from /proc")
	return nil
}
