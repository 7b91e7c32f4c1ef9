package rtcontainer

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/oci"
)

// Container is a container with a request, between Prepare and AfterDelete.
type Container struct {
	Namespace, ID string
	Req           *oci.Request
	Pid           int // the init, once created

	host     Host
	rt       Runtime
	cg       *cgroupfix.Manager
	leaf     string // the cgroup linux.cgroupsPath names
	bundle   string
	stateDir string
	detached bool
	hook     func(step string) error
}

// Prepare is the step before `runc create`: it parses the container's request and, for one
// that asks for anything, grants its budget (cgroup v1) and rewrites the bundle's config.json.
// It returns nil for a container it leaves untouched. On error nothing of it remains.
func (h Host) Prepare(ctx context.Context, o Options) (_ *Container, retErr error) {
	specPath := filepath.Join(o.Bundle, "config.json")
	spec, err := ReadSpec(specPath)
	if err != nil {
		return nil, err
	}
	req, err := oci.ParseRequest(spec, o.Config.Rules())
	if err != nil || req == nil {
		return nil, err
	}
	cg, err := h.cgroups(o.Config.StateDir)
	if err != nil {
		return nil, err
	}
	c := &Container{Namespace: o.Namespace, ID: o.ID, Req: req, host: h, rt: o.Runtime, cg: cg, bundle: o.Bundle,
		stateDir: o.Config.StateDir, detached: o.Detached, hook: failpoint.Hook(spec.Annotations)}
	cg.Hook = c.hook

	claim, err := h.admit(c, spec, o.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	if claim != nil {
		start := time.Now()
		if err := cg.Grant(ctx, claim); err != nil {
			return nil, err
		}
		// took includes the wait for the host-wide lock: what a create paid for its budget.
		log.G(ctx).WithField("took", time.Since(start).Round(time.Microsecond)).WithField("policy", req.Sched.Policy).
			WithField("priority", req.Sched.Priority).WithField("mode", req.Mode).WithField("cgroup", c.leaf).
			WithField("rt_runtime_us", claim.RuntimeUS).WithField("pod", claim.Pod).Info("granted real-time resources")
		defer func() {
			if retErr != nil {
				c.Abort(ctx)
			}
		}()
	}
	// The spec is rewritten only once the budget is granted: a refused container's bundle is
	// left as it came.
	oci.PrepareSpec(spec, req, claim != nil && claim.RuntimeUS > 0)
	if o.Detached && req.Mode == oci.ModeApply {
		oci.WithoutScheduler(spec)
	}
	if err := WriteSpec(specPath, spec); err != nil {
		return nil, err
	}
	if err := c.step(StepCreateGranted, func() error { return nil }); err != nil {
		return nil, err
	}
	return c, nil
}

// admit checks what only the host can tell (cgroup v2 kernels that refuse RT, the container's
// cgroup, its CPUs) and returns the claim to grant, nil for a container that needs none.
func (h Host) admit(c *Container, spec *specs.Spec, systemd bool) (*cgroupfix.Claim, error) {
	req := c.Req
	if !req.NeedsBudget() && !req.ExemptQuota() {
		return nil, nil // not real-time: only the exec policy, or a SCHED_OTHER/BATCH/IDLE policy
	}
	if c.cg.V2 && req.Sched.Policy.RealTime() {
		if refused, fix := cgroupfix.V2RefusesRT(h.ProcRoot, h.BootDir); refused {
			// Not NotImplemented: containerd takes that from task.Create to mean "older shim
			// API", retries with it and loses this message.
			return nil, fmt.Errorf("%w: %s=%s: %s", errdefs.ErrFailedPrecondition, oci.KeyPolicy, req.Sched.Policy, fix)
		}
	}
	var cgroupsPath string
	if spec.Linux != nil {
		cgroupsPath = spec.Linux.CgroupsPath
	}
	leaf, err := cgroupfix.ResolvePath(cgroupsPath, systemd)
	if err != nil {
		return nil, err
	}
	c.leaf = leaf
	if req.Sched.Policy == oci.PolicyDeadline && spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.CPU != nil {
		// A DEADLINE task whose CPUs do not span its root domain is refused by the kernel with a
		// bare EPERM: say why before anything is changed.
		if err := c.cg.DeadlineDomainV2(leaf, spec.Linux.Resources.CPU.Cpus); err != nil {
			return nil, err
		}
	}
	claim := &cgroupfix.Claim{Namespace: c.Namespace, ID: c.ID, Leaf: leaf, ExemptQuota: req.ExemptQuota(), Owner: self(h.ProcRoot)}
	if req.NeedsBudget() && c.cg.RTGroupSched() {
		claim.RuntimeUS, claim.PeriodUS = req.RTRuntimeUS, req.RTPeriodUS
	}
	if req.ExemptQuota() && spec.Annotations[oci.AnnotationContainerType] == ContainerTypeContainer {
		claim.Pod = path.Dir(leaf)
	}
	return claim, nil
}

// ContainerTypeContainer marks an application container of a Kubernetes pod (CRI); its
// cgroup's parent is the pod-level cgroup.
const ContainerTypeContainer = "container"
