package rtcontainer

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// AfterCreate is the step after `runc create`, while the init is paused: on cgroup v2 the
// claim follows the cgroup the init really is in, and in apply mode the policy is set on every
// thread of the init where the runtime did not. On error the caller kills and deletes the
// container, then calls Abort.
func (c *Container) AfterCreate(ctx context.Context) error {
	return c.step(StepCreateCreated, func() error {
		pid, err := c.rt.InitPID(ctx)
		if err != nil {
			return fmt.Errorf("%w: container %s: init pid: %w", errdefs.ErrFailedPrecondition, c.ID, err)
		}
		c.Pid = pid
		if err := c.locate(ctx); err != nil {
			return err
		}
		if err := c.tune(ctx); err != nil {
			return err
		}
		if err := c.applyInit(ctx); err != nil {
			return err
		}
		c.guardPod(ctx)
		if c.detached {
			// The caller exits now: the container's init owns the claim while it lives.
			if err := c.cg.Adopt(c.Namespace, c.ID, cgroupfix.OwnerOf(c.host.ProcRoot, pid)); err != nil {
				return err
			}
			if err := c.save(); err != nil {
				return err
			}
		}
		return c.step(StepCreateApplied, func() error { return nil })
	})
}

// locate makes the claim follow the init's cgroup on cgroup v2 (/proc/<pid>/cgroup), wherever
// linux.cgroupsPath pointed elsewhere. On cgroup v1 the budgets had to be in place before runc
// create, so there is nothing to move.
func (c *Container) locate(ctx context.Context) error {
	if !c.cg.V2 || !c.Req.NeedsBudget() {
		return nil // only real-time containers hold a claim
	}
	leaf, err := cgroupfix.ProcCgroupV2(c.host.ProcRoot, c.Pid)
	if err == nil {
		_, err = c.cg.LocateV2(ctx, c.Namespace, c.ID, leaf)
	}
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, c.ID, err)
	}
	c.leaf = leaf
	return nil
}

func (c *Container) applyInit(ctx context.Context) error {
	if c.Req.Mode != oci.ModeApply {
		return nil
	}
	changed, err := c.host.procs().Apply(c.Pid, c.Req.Sched)
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, c.ID, err)
	}
	log.G(ctx).WithField("pid", c.Pid).WithField("threads_set_by_rtshim", changed).Debug("policy applied to paused init")
	return nil
}

// BeforeStart checks, before `runc start` lets the init execve the program, that every thread
// of the paused init has the policy, and sets it again where not: a container whose policy
// could not be set never starts.
func (c *Container) BeforeStart(ctx context.Context) error {
	return c.step(StepStartBefore, func() error {
		if c.Req.Mode != oci.ModeApply {
			return nil
		}
		if c.Pid == 0 {
			pid, err := c.rt.InitPID(ctx)
			if err != nil {
				return fmt.Errorf("%w: container %s: init pid: %w", errdefs.ErrFailedPrecondition, c.ID, err)
			}
			c.Pid = pid
		}
		procs := c.host.procs()
		if err := procs.Verify(c.Pid, c.Req.Sched); err != nil {
			log.G(ctx).WithError(err).Warn("policy changed before start; setting it again")
			if _, err := procs.Apply(c.Pid, c.Req.Sched); err != nil {
				return fmt.Errorf("%w: not starting: %w", errdefs.ErrFailedPrecondition, err)
			}
		}
		return nil
	})
}

// Exec gives a process exec'd into the container the exec policy (SCHED_OTHER unless asked),
// never the container's: a debug shell must not inherit FIFO 80. An exec'd process is started
// by `runc exec` and may finish before anything could be set afterwards, so an exec policy
// other than SCHED_OTHER needs a runtime that applies process.scheduler (runc ≥ 1.2, runtime-spec
// ≥ 1.1), and is refused with any other. SCHED_OTHER always holds: runc exec runs SCHED_OTHER.
func (c *Container) Exec(ctx context.Context, p *specs.Process) error {
	if c.Req.Exec != (oci.Sched{Policy: oci.PolicyOther}) {
		v, err := c.rt.Version(ctx)
		if err != nil {
			log.G(ctx).WithError(err).Warn("read runtime version")
		}
		if !specAtLeast(v.Spec, 1, 1) {
			return fmt.Errorf("%w: %s=%s needs a runtime that applies process.scheduler (runc 1.2 or newer); the runtime reports runc %q, spec %q",
				errdefs.ErrFailedPrecondition, oci.KeyExecPolicy, c.Req.Exec.Policy, v.Runc, v.Spec)
		}
	}
	oci.ExecProcess(p, c.Req)
	return nil
}

// specAtLeast compares a runtime-spec version ("1.0.2-dev", "1.2.1") with major.minor.
func specAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

// Update keeps the CFS quota exemption of a real-time container when a quota is set again
// (docker update --cpus, a kubelet resize) and leaves RT budgets to rtshim.
func (c *Container) Update(res *specs.LinuxResources) { oci.UpdateResources(res, c.Req) }

// BeforeDelete is the step before `runc delete`: once no process is left, the container's own
// budget goes to 0. A removed cgroup keeps its budget in the kernel's task-group tree until an
// RCU grace period ends, which would make lowering its parent fail for a few milliseconds.
// It is best effort: a failure is logged, and AfterDelete gives the budget back anyway.
func (c *Container) BeforeDelete(ctx context.Context) {
	err := c.step(StepDeleteBefore, func() error {
		cg, err := c.manager()
		if err != nil {
			return err
		}
		cg.Quiesce(ctx, c.Namespace, c.ID)
		return nil
	})
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", c.ID).Warn("quiesce RT budget before delete")
	}
}

// AfterDelete is the step after `runc delete` removed the container: every budget, quota and
// record it held is given back. On error the claim stays on disk and the next container
// lifecycle on this host finishes the job.
func (c *Container) AfterDelete(ctx context.Context) error {
	return c.step(StepDeleteDeleted, func() error {
		c.stopGuarding()
		return c.host.forget(ctx, c.cg, c.stateDir, c.Namespace, c.ID)
	})
}

// guardPod keeps the pod cgroup's quota lifted for as long as this container lives, when its
// claim exempts the pod: the kubelet rewrites the pod cgroup on an in-place resize without
// calling the runtime (cgroupfix.GuardPod). Only a front door that lives as long as the
// container (the shim) can do that; runc-rt exits after each command.
func (c *Container) guardPod(ctx context.Context) {
	if c.detached || !c.Req.ExemptQuota() {
		return
	}
	claim, err := c.cg.State.LoadClaim(c.Namespace, c.ID)
	if err != nil || claim == nil || claim.Pod == "" || claim.Pod == "/" {
		return
	}
	// The guard outlives this call (Create's context ends with the RPC): its own context,
	// with the container's logger.
	gctx, cancel := context.WithCancel(log.WithLogger(context.WithoutCancel(ctx), log.G(ctx)))
	c.stopGuard = cancel
	c.cg.GuardPod(gctx, claim.Pod, c.Namespace, c.ID)
}

// manager is the container's cgroup manager. Lookup leaves it to the first step that needs it
// (BeforeDelete): finding the cpu hierarchy reads mountinfo, long on a Docker host, and
// runc-rt's start, exec and update have no use for it.
func (c *Container) manager() (*cgroupfix.Manager, error) {
	if c.cg == nil {
		cg, err := c.host.cgroups(c.stateDir)
		if err != nil {
			return nil, err
		}
		cg.Hook = c.hook
		c.cg = cg
	}
	return c.cg, nil
}

func (c *Container) stopGuarding() {
	if c.stopGuard != nil {
		c.stopGuard()
	}
}

// Abort gives back what Prepare granted to a container whose create failed.
func (c *Container) Abort(ctx context.Context) {
	c.stopGuarding()
	if err := c.host.forget(ctx, c.cg, c.stateDir, c.Namespace, c.ID); err != nil {
		log.G(ctx).WithError(err).WithField("id", c.ID).Warn("release RT budget after failed create")
	}
}

// Forget gives back everything container ns/id holds (budgets up the tree, the pod's quota)
// and removes its records. It is idempotent. Front doors call it when a container is gone
// without its own Container at hand: `containerd-shim-rt-v2 delete` after a shim died, and
// runc-rt.
func (h Host) Forget(ctx context.Context, stateDir, ns, id string) error {
	return h.forget(ctx, nil, stateDir, ns, id)
}

// forget is Forget with the container's own cgroup manager when the caller has one (nil: found
// here): finding it reads the mount table, which grows with the containers on the host.
func (h Host) forget(ctx context.Context, cg *cgroupfix.Manager, stateDir, ns, id string) error {
	var err error
	// Without a claim there is nothing to give back up the tree: no mount table to read, no
	// host-wide lock to wait for. containerd runs `containerd-shim-rt-v2 delete` after every
	// shim's exit, most often after the shim gave everything back.
	if h.Holds(stateDir, ns, id) {
		if cg == nil {
			cg, err = h.cgroups(stateDir)
		}
		if err == nil {
			err = cg.Release(ctx, ns, id)
		}
	}
	if terr := h.forgetTuning(ctx, stateDir, ns, id); err == nil {
		err = terr
	}
	if rerr := removeRecord(stateDir, ns, id); err == nil {
		err = rerr
	}
	return err
}

// Holds reports whether container ns/id still has a claim on the host: after its shim is
// gone, that its shim died before giving it back.
func (h Host) Holds(stateDir, ns, id string) bool {
	c, err := cgroupfix.State{Dir: stateDir}.LoadClaim(ns, id)
	return err != nil || c != nil // a record that cannot be read counts: it may hold something
}

// Recover finishes, at once, whatever crashed shims left on the host (cgroupfix Reconcile):
// `containerd-shim-rt-v2 delete` runs it when a shim died holding a claim.
func (h Host) Recover(ctx context.Context, stateDir string) error {
	cg, err := h.cgroups(stateDir)
	if err != nil {
		return err
	}
	return cg.Reconcile(ctx)
}
