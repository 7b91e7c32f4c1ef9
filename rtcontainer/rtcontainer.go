// Package rtcontainer is what the shim and the runc wrapper share: the steps a real-time
// container needs around `runc create` — validate its request, rewrite its bundle's spec,
// grant its budget — and, once runc has created the paused init, set and verify its policy.
package rtcontainer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/internal/sched"
	"github.com/rtshim/rtshim/oci"
)

// Host is where procfs and the kernel config are; tests point it at fake trees.
type Host struct {
	ProcRoot string
	BootDir  string
}

// DefaultHost is the real host.
func DefaultHost() Host { return Host{ProcRoot: "/proc", BootDir: "/boot"} }

// Procs sets and reads thread policies on this host.
func (h Host) Procs() sched.Procs { return sched.Procs{Root: h.ProcRoot} }

// CgroupManager finds the cpu controller's hierarchy and returns the manager of its budgets.
func (h Host) CgroupManager(stateDir string) (*cgroupfix.Manager, error) {
	hier, err := cgroupfix.FindCPU(h.ProcRoot)
	if err != nil {
		return nil, err
	}
	return &cgroupfix.Manager{
		CPU: cgroupfix.DirFS{Root: hier.Mount}, V2: hier.V2,
		State: cgroupfix.State{Dir: stateDir}, ProcRoot: h.ProcRoot,
	}, nil
}

// Self identifies the calling process as the owner of a claim.
func (h Host) Self() cgroupfix.Owner { return cgroupfix.OwnerOf(h.ProcRoot, os.Getpid()) }

// Options describe one container to prepare.
type Options struct {
	Namespace, ID, Bundle string
	Config                *oci.Config
	// SystemdCgroup: runc uses the systemd cgroup driver (linux.cgroupsPath is slice:prefix:name).
	SystemdCgroup bool
	Owner         cgroupfix.Owner
	// StripScheduler leaves process.scheduler out of the spec in apply mode: the caller sets the
	// policy on the paused init itself, and runc's stored config then carries no scheduler for
	// `runc exec` to pass on (runc ≥ 1.3 does that).
	StripScheduler bool
}

// Container is a container with a real-time request, between create and delete.
type Container struct {
	Namespace, ID string
	Req           *oci.Request
	Cgroups       *cgroupfix.Manager
	Leaf          string // the cgroup linux.cgroupsPath names
	Pid           int    // the init, once runc created it
	Annotations   map[string]string
}

// Hit runs the crash-safety tests' failpoint of a step (test builds only).
func (c *Container) Hit(step string) error { return failpoint.Hit(c.Annotations, step) }

// Prepare parses the container's request and, for one that needs anything, rewrites the
// bundle's config.json and grants the budget. It returns nil for a container it passes through
// untouched. On error nothing of it remains.
func (h Host) Prepare(ctx context.Context, o Options) (*Container, error) {
	specPath := filepath.Join(o.Bundle, "config.json")
	spec, err := ReadSpec(specPath)
	if err != nil {
		return nil, err
	}
	req, err := oci.ParseRequest(spec, o.Config)
	if err != nil || req == nil {
		return nil, err
	}
	cg, err := h.CgroupManager(o.Config.StateDir)
	if err != nil {
		return nil, err
	}
	cg.Hook = func(step string) error { return failpoint.Hit(spec.Annotations, step) }
	c := &Container{Namespace: o.Namespace, ID: o.ID, Req: req, Cgroups: cg, Annotations: spec.Annotations}
	strip := func() {
		if o.StripScheduler && req.Mode == oci.ModeApply {
			oci.WithoutScheduler(spec)
		}
	}
	if !req.NeedsBudget() && !req.ExemptQuota() {
		oci.PrepareSpec(spec, req, false)
		strip()
		return c, WriteSpec(specPath, spec)
	}
	if cg.V2 && req.Sched.Policy.RealTime() {
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
	if c.Leaf, err = cgroupfix.ResolvePath(cgroupsPath, o.SystemdCgroup); err != nil {
		return nil, err
	}
	if err := checkDeadlineV2(cg, spec, req, c.Leaf); err != nil {
		return nil, err
	}
	budget := req.NeedsBudget() && cg.RTGroupSched()
	claim := &cgroupfix.Claim{Namespace: o.Namespace, ID: o.ID, Leaf: c.Leaf, ExemptQuota: req.ExemptQuota(), Owner: o.Owner}
	if budget {
		claim.RuntimeUS, claim.PeriodUS = req.RTRuntimeUS, req.RTPeriodUS
	}
	if req.ExemptQuota() && spec.Annotations[oci.AnnotationContainerType] == ContainerTypeContainer {
		claim.Pod = path.Dir(c.Leaf)
	}
	oci.PrepareSpec(spec, req, budget)
	strip()
	if err := WriteSpec(specPath, spec); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cg.Grant(ctx, claim); err != nil {
		return nil, err
	}
	// took includes the wait for the host-wide lock: what a create paid for its budget.
	log.G(ctx).WithField("took", time.Since(start).Round(time.Microsecond)).WithField("policy", req.Sched.Policy).WithField("priority", req.Sched.Priority).
		WithField("mode", req.Mode).WithField("cgroup", c.Leaf).WithField("rt_runtime_us", claim.RuntimeUS).
		WithField("pod", claim.Pod).Info("granted real-time resources")
	return c, nil
}

// ContainerTypeContainer marks an application container of a Kubernetes pod (CRI); its
// cgroup's parent is the pod-level cgroup.
const ContainerTypeContainer = "container"

// ApplyInit sets the policy on every thread of the paused init (c.Pid) wherever the runtime
// did not, in apply mode.
func (h Host) ApplyInit(ctx context.Context, c *Container) error {
	if c.Req.Mode != oci.ModeApply {
		return nil
	}
	changed, err := h.Procs().Apply(c.Pid, c.Req.Sched)
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, c.ID, err)
	}
	log.G(ctx).WithField("pid", c.Pid).WithField("threads_set_by_rtshim", changed).Debug("policy applied to paused init")
	return nil
}

// VerifyInit checks, before start, that every thread of the paused init has the policy, and
// sets it again where not: a container whose policy could not be set never starts.
func (h Host) VerifyInit(ctx context.Context, c *Container) error {
	if c.Req.Mode != oci.ModeApply {
		return nil
	}
	procs := h.Procs()
	if err := procs.Verify(c.Pid, c.Req.Sched); err != nil {
		log.G(ctx).WithError(err).Warn("policy changed before start; setting it again")
		if _, err := procs.Apply(c.Pid, c.Req.Sched); err != nil {
			return fmt.Errorf("%w: not starting: %w", errdefs.ErrFailedPrecondition, err)
		}
	}
	return nil
}

// ApplyExec sets the exec policy on a started exec process where the runtime did not.
func (h Host) ApplyExec(ctx context.Context, c *Container, pid int) {
	if _, err := h.Procs().Apply(pid, c.Req.Exec); err != nil {
		log.G(ctx).WithError(err).WithField("pid", pid).Warn("set exec policy")
	}
}

// ReadSpec reads a bundle's config.json.
func ReadSpec(p string) (*specs.Spec, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", errdefs.ErrInvalidArgument, p, err)
	}
	return &spec, nil
}

// WriteSpec replaces a bundle's config.json atomically.
func WriteSpec(p string, spec *specs.Spec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	tmp := p + ".rtshim"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write bundle spec: %w", err)
	}
	return os.Rename(tmp, p)
}
