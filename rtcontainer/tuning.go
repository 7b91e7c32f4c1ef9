package rtcontainer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/tuning"
)

// Tuner returns the manager of the host tuning (package tuning), with its records in stateDir:
// the cpuset hierarchy (the unified one on cgroup v2), /proc and /sys, and a running irqbalance.
func (h Host) Tuner(stateDir string) (*tuning.Manager, error) {
	mounts, err := cgroupfix.Mounts(h.ProcRoot)
	if err != nil {
		return nil, err
	}
	cpuset, v2 := "", false
	for _, m := range mounts {
		if !m.V2 && slices.Contains(m.Options, "cpuset") {
			cpuset, v2 = m.Point, false
			break
		}
		if m.V2 && cpuset == "" {
			cpuset, v2 = m.Point, true
		}
	}
	if cpuset == "" {
		return nil, fmt.Errorf("%w: no cgroup cpuset controller mounted", errdefs.ErrFailedPrecondition)
	}
	sys := h.SysRoot
	if sys == "" {
		sys = "/sys"
	}
	m := &tuning.Manager{Sys: tuning.HostFS{Proc: h.ProcRoot, Sys: sys}, Cpuset: cgroupfix.DirFS{Root: cpuset}, V2: v2,
		State: cgroupfix.State{Dir: stateDir}, ProcRoot: h.ProcRoot}
	if h.RunRoot != "" {
		m.Irqbalance = tuning.SocketIrqbalance{Dir: filepath.Join(h.RunRoot, "irqbalance")}
	}
	return m, nil
}

// reserveTuning records the container's tuning before anything else is granted (its CPUs are
// then its own; a conflict is refused here, naming the container that holds them) and pins
// the spec to its CPUs. The host is tuned after runc create (tune).
func (h Host) reserveTuning(ctx context.Context, c *Container, spec *specs.Spec, systemd bool) error {
	if c.Req.TuningSkipped != "" {
		log.G(ctx).WithField("reason", c.Req.TuningSkipped).Info("CRI-O tuning annotations not applied, as CRI-O would not apply them")
	}
	t := c.Req.Tuning
	if t == nil {
		return nil
	}
	tuner, err := h.Tuner(c.stateDir)
	if err != nil {
		return err
	}
	c.tuner = tuner
	var cgroupsPath string
	if spec.Linux != nil {
		cgroupsPath = spec.Linux.CgroupsPath
	}
	if c.tuneLeaf, err = cgroupfix.ResolvePath(cgroupsPath, systemd); err != nil {
		return err
	}
	if err := tuner.Reserve(ctx, &tuning.Holder{Namespace: c.Namespace, ID: c.ID, Tuning: *t, Owner: self(h.ProcRoot)}); err != nil {
		return err
	}
	oci.Apply(spec, oci.WithCPUs(t.CPUs))
	return nil
}

// deferPolicy reports whether the policy must wait for the partition: runc applies
// process.scheduler in runc init, before the container's CPUs are a root domain of their own,
// where the kernel refuses a pinned SCHED_DEADLINE task. The shim sets it on the paused init
// after tune instead (applyInit), before the program's first instruction all the same.
func deferPolicy(r *oci.Request) bool {
	return r.Tuning != nil && r.Tuning.Exclusive && r.Sched.Policy == oci.PolicyDeadline && r.Mode == oci.ModeApply
}

// tune applies the reserved tuning while the init is paused (after runc create): the cgroup is
// the one the init really is in on cgroup v2. A pinned SCHED_DEADLINE container is checked
// against the root domain the partition made.
func (c *Container) tune(ctx context.Context) error {
	if c.tuner == nil {
		return nil
	}
	leaf := c.tuneLeaf
	if c.tuner.V2 {
		var err error
		if leaf, err = cgroupfix.ProcCgroupV2(c.host.ProcRoot, c.Pid); err != nil {
			return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, c.ID, err)
		}
	}
	if err := c.tuner.Apply(ctx, c.Namespace, c.ID, leaf); err != nil {
		return err
	}
	if c.detached {
		if err := c.tuner.Adopt(c.Namespace, c.ID, cgroupfix.OwnerOf(c.host.ProcRoot, c.Pid)); err != nil {
			return err
		}
	}
	if c.Req.Sched.Deadline != nil && c.tuner.V2 {
		return c.cg.DeadlineDomainV2(leaf, c.Req.Tuning.CPUs)
	}
	return nil
}

// forgetTuning gives back container ns/id's host tuning and what shims that died left.
func (h Host) forgetTuning(ctx context.Context, stateDir, ns, id string) error {
	if !tuning.HasRecords(stateDir) {
		return nil
	}
	tuner, err := h.Tuner(stateDir)
	if err != nil {
		return err
	}
	err = tuner.Release(ctx, ns, id)
	tuner.Sweep(ctx)
	return err
}
