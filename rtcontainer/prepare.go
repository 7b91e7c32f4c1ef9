package rtcontainer

import (
	"context"
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
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/tuning"
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
	// stopGuard stops the pod quota guard (see guardPod).
	stopGuard context.CancelFunc
	// tuner holds the container's host tuning, reserved in Prepare, applied in AfterCreate;
	// tuneLeaf is its cgroup as linux.cgroupsPath names it.
	tuner    *tuning.Manager
	tuneLeaf string
}

// Prepare is the step before `runc create`: it parses the container's request and, for one
// that asks for anything, grants its budget (cgroup v1) and rewrites the bundle's config.json.
// It returns nil for a container it leaves untouched. On error nothing of it remains.
func (h Host) Prepare(ctx context.Context, o Options) (_ *Container, retErr error) {
	rec := BundleRecord{Namespace: o.Namespace, ID: o.ID, StateDir: o.Config.StateDir}
	if o.Detached {
		// Every container's: runc-rt's later commands read it in the bundle they run in to
		// tell a container of the config's state dir from one of an older, without asking
		// runc for the bundle (a `runc state` process at every kill and delete).
		if err := writeBundleRecord(o.Bundle, rec); err != nil {
			return nil, err
		}
	}
	specPath := filepath.Join(o.Bundle, "config.json")
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	if !oci.MayAsk(raw) {
		// Asks for nothing: the stock path, untouched. The shim writes no bundle record
		// either: such a container never holds anything to give back, and creating the file
		// was a third of a millisecond of every create on an ext4 state dir.
		return nil, nil
	}
	if !o.Detached {
		if err := writeBundleRecord(o.Bundle, rec); err != nil {
			return nil, err
		}
	}
	spec, err := decodeSpec(specPath, raw)
	if err != nil {
		return nil, err
	}
	rules := o.Config.Rules()
	req, err := oci.ParseRequest(spec, rules)
	if oci.NeedsTick(rules, req, err) {
		rules.Limits.TickUS, _ = cgroupfix.TickUS(h.ProcRoot, h.BootDir)
		req, err = oci.ParseRequest(spec, rules)
	}
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

	// The tuning first: a container refused its CPUs gets no budget either.
	if err := h.reserveTuning(ctx, c, spec, o.SystemdCgroup); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil && c.tuner != nil {
			c.Abort(ctx)
		}
	}()
	claim, err := h.admit(c, spec, rules, o.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	if claim != nil {
		start := time.Now()
		if err := cg.Grant(ctx, claim); err != nil {
			return nil, err
		}
		// took includes the wait for the host-wide lock: what a create paid for its budget.
		entry := log.G(ctx)
		if log.GetLevel() >= log.DebugLevel {
			entry = entry.WithFields(cg.Cost().LogFields())
		}
		entry.WithField("took", time.Since(start).Round(time.Microsecond)).WithField("policy", req.Sched.Policy).
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
	if req.Mode == oci.ModeApply && (o.Detached || req.Sched.Policy.RealTime()) {
		// AfterCreate sets a real-time policy on the paused init (after tune), so runc has none
		// to set: `runc init` would otherwise run real-time for the rest of create, on the
		// container's budget, and a budget below a tick (limits.min_rt_runtime_us lowered)
		// throttles it there for minutes, with no task yet that a kill could reach; and a pinned
		// SCHED_DEADLINE task is refused until its CPUs are a root domain of their own, which
		// tune makes after runc create. runc-rt (detached) also keeps runc's stored config free
		// of any policy for `runc exec`.
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
func (h Host) admit(c *Container, spec *specs.Spec, rules *oci.Rules, systemd bool) (*cgroupfix.Claim, error) {
	req := c.Req
	if req.Mode == oci.ModeGrant && req.Grant.RTPrio > 0 {
		if err := h.canRaiseRTPrio(req.Grant.RTPrio); err != nil {
			return nil, err
		}
	}
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
	if err := h.checkDeadline(c, spec, leaf); err != nil {
		if req.FromSpec {
			return nil, &oci.SpecError{Err: err}
		}
		return nil, err
	}
	claim := &cgroupfix.Claim{Namespace: c.Namespace, ID: c.ID, Leaf: leaf, ExemptQuota: req.ExemptQuota(), Owner: self(h.ProcRoot)}
	if c.cg.V2 {
		// No RT budgets on cgroup v2: a Kubernetes pod's SCHED_DEADLINE bandwidth is what the
		// scheduler counts instead (rtshim.io/dl-bandwidth).
		if claim.DLAllocation, err = oci.CheckDeadlineAllocation(req, spec, rules); err != nil {
			return nil, err
		}
	}
	if req.NeedsBudget() && c.cg.RTGroupSched() {
		claim.RuntimeUS, claim.PeriodUS, claim.AllocatedUS = req.RTRuntimeUS, req.RTPeriodUS, req.AllocatedUS
	}
	if spec.Annotations[oci.AnnotationContainerType] == ContainerTypeContainer {
		// A Kubernetes pod is one application: all its containers' budgets together are bounded.
		claim.PodLimitUS, claim.PodLimitPeriodUS = rules.Limits.MaxPodRTRuntimeUS, rules.Defaults.RTPeriodUS
		if req.ExemptQuota() {
			claim.Pod = path.Dir(leaf)
		}
	}
	return claim, nil
}

// checkDeadline refuses, with the reason, what the kernel would refuse a SCHED_DEADLINE task
// with a bare EINVAL or EPERM: a period outside the host's sched_deadline_period_{min,max}_us,
// and CPUs that do not span the task's root domain.
func (h Host) checkDeadline(c *Container, spec *specs.Spec, leaf string) error {
	d := c.Req.Sched.Deadline
	if d == nil {
		return nil
	}
	key := oci.KeyDeadline
	if c.Req.FromSpec {
		key = "process.scheduler.period"
	}
	sysctl := func(name string) (int64, bool) {
		v, err := cgroupfix.ReadInt(cgroupfix.DirFS{Root: filepath.Join(h.ProcRoot, "sys", "kernel")}, "/", name)
		return v, err == nil
	}
	if lo, ok := sysctl("sched_deadline_period_min_us"); ok && d.Period < time.Duration(lo)*time.Microsecond {
		return fmt.Errorf("%w: %s: period %v is below this host's minimum, kernel.sched_deadline_period_min_us=%d",
			errdefs.ErrInvalidArgument, key, d.Period, lo)
	}
	if hi, ok := sysctl("sched_deadline_period_max_us"); ok && d.Period > time.Duration(hi)*time.Microsecond {
		return fmt.Errorf("%w: %s: period %v is above this host's maximum, kernel.sched_deadline_period_max_us=%d",
			errdefs.ErrInvalidArgument, key, d.Period, hi)
	}
	if t := c.Req.Tuning; t != nil && t.Exclusive {
		return nil // the container's CPUs become a root domain of their own (checked after tune)
	}
	if spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.CPU != nil {
		// A DEADLINE task whose CPUs do not span its root domain is refused with a bare EPERM.
		return c.cg.DeadlineDomainV2(leaf, spec.Linux.Resources.CPU.Cpus)
	}
	return nil
}

// ContainerTypeContainer marks an application container of a Kubernetes pod (CRI); its
// cgroup's parent is the pod-level cgroup.
const ContainerTypeContainer = "container"
