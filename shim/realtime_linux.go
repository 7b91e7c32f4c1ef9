package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	taskapi "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/oci"
)

// containerTypeContainer marks an application container of a Kubernetes pod (CRI); its
// cgroup's parent is the pod-level cgroup.
const containerTypeContainer = "container"

// prepare parses the container's request and, for one that needs anything, rewrites the
// bundle's config.json and grants the budget. It returns nil for containers it passes through.
func (s *Service) prepare(ctx context.Context, ns string, r *taskapi.CreateTaskRequest, cfg *oci.Config) (*rtContainer, error) {
	specPath := filepath.Join(r.Bundle, "config.json")
	spec, err := readSpec(specPath)
	if err != nil {
		return nil, err
	}
	req, err := oci.ParseRequest(spec, cfg)
	if err != nil || req == nil {
		return nil, err
	}
	cg, err := s.host.cgroupManager(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cg.Hook = func(step string) error { return failpoint.Hit(spec.Annotations, step) }
	c := &rtContainer{namespace: ns, req: req, cgroups: cg, annotations: spec.Annotations}
	if !req.NeedsBudget() && !req.ExemptQuota() {
		oci.PrepareSpec(spec, req, false)
		return c, writeSpec(specPath, spec)
	}
	if cg.V2 && req.Sched.Policy.RealTime() {
		if refused, fix := cgroupfix.V2RefusesRT(s.host.ProcRoot, s.host.BootDir); refused {
			// Not NotImplemented: containerd takes that from task.Create to mean "older shim
			// API", retries with it and loses this message.
			return nil, fmt.Errorf("%w: %s=%s: %s", errdefs.ErrFailedPrecondition, oci.KeyPolicy, req.Sched.Policy, fix)
		}
	}
	var cgroupsPath string
	if spec.Linux != nil {
		cgroupsPath = spec.Linux.CgroupsPath
	}
	leaf, err := cgroupfix.ResolvePath(cgroupsPath, systemdCgroup(r.Options))
	if err != nil {
		return nil, err
	}
	if err := checkDeadlineV2(cg, spec, req, leaf); err != nil {
		return nil, err
	}
	budget := req.NeedsBudget() && cg.RTGroupSched()
	claim := &cgroupfix.Claim{Namespace: ns, ID: r.ID, Leaf: leaf, ExemptQuota: req.ExemptQuota(), Owner: self(s.host.ProcRoot)}
	if budget {
		claim.RuntimeUS, claim.PeriodUS = req.RTRuntimeUS, req.RTPeriodUS
	}
	if req.ExemptQuota() && spec.Annotations[oci.AnnotationContainerType] == containerTypeContainer {
		claim.Pod = path.Dir(leaf)
	}
	oci.PrepareSpec(spec, req, budget)
	if err := writeSpec(specPath, spec); err != nil {
		return nil, err
	}
	if err := writeBundleRecord(r.Bundle, bundleRecord{Namespace: ns, StateDir: cg.State.Dir}); err != nil {
		return nil, err
	}
	if err := cg.Grant(ctx, claim); err != nil {
		return nil, err
	}
	log.G(ctx).WithField("policy", req.Sched.Policy).WithField("priority", req.Sched.Priority).
		WithField("mode", req.Mode).WithField("cgroup", leaf).WithField("rt_runtime_us", claim.RuntimeUS).
		WithField("pod", claim.Pod).Info("granted real-time resources")
	return c, nil
}

func (h Host) cgroupManager(stateDir string) (*cgroupfix.Manager, error) {
	hier, err := cgroupfix.FindCPU(h.ProcRoot)
	if err != nil {
		return nil, err
	}
	return &cgroupfix.Manager{
		CPU: cgroupfix.DirFS{Root: hier.Mount}, V2: hier.V2,
		State: cgroupfix.State{Dir: stateDir}, ProcRoot: h.ProcRoot,
	}, nil
}

// afterCreate applies the policy to every thread of the paused init in apply mode, wherever
// the runtime did not (runc < 1.2 ignores process.scheduler).
func (s *Service) afterCreate(ctx context.Context, id string, c *rtContainer) error {
	if c.req.Mode != oci.ModeApply {
		return nil
	}
	changed, err := s.host.procs().Apply(c.pid, c.req.Sched)
	if err != nil {
		return fmt.Errorf("%w: container %s: %w", errdefs.ErrFailedPrecondition, id, err)
	}
	log.G(ctx).WithField("pid", c.pid).WithField("threads_set_by_rtshim", changed).Debug("policy applied to paused init")
	return nil
}

func (s *Service) verifyInit(ctx context.Context, c *rtContainer) error {
	if c.req.Mode != oci.ModeApply {
		return nil
	}
	procs := s.host.procs()
	if err := procs.Verify(c.pid, c.req.Sched); err != nil {
		log.G(ctx).WithError(err).Warn("policy changed before start; setting it again")
		if _, err := procs.Apply(c.pid, c.req.Sched); err != nil {
			return fmt.Errorf("%w: not starting: %w", errdefs.ErrFailedPrecondition, err)
		}
	}
	return nil
}

func execSpec(a *types.Any, req *oci.Request) (*types.Any, error) {
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return nil, fmt.Errorf("exec process spec: %w", err)
	}
	p, ok := v.(*specs.Process)
	if !ok {
		return nil, fmt.Errorf("%w: exec process spec of type %T", errdefs.ErrInvalidArgument, v)
	}
	oci.ExecProcess(p, req)
	return typeurl.MarshalAnyToProto(p)
}

func updateResources(a *types.Any, req *oci.Request) (*types.Any, error) {
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return nil, fmt.Errorf("update resources: %w", err)
	}
	res, ok := v.(*specs.LinuxResources)
	if !ok {
		return a, nil // not Linux: nothing of ours
	}
	oci.UpdateResources(res, req)
	return typeurl.MarshalAnyToProto(res)
}

func readSpec(p string) (*specs.Spec, error) {
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

func writeSpec(p string, spec *specs.Spec) error {
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

func self(procRoot string) cgroupfix.Owner {
	pid := os.Getpid()
	return cgroupfix.Owner{PID: pid, StartTime: cgroupfix.ProcessStartTime(procRoot, pid)}
}

// bundleRecord lets `containerd-shim-rt-v2 delete`, run by containerd after a shim died, find
// the state to release: it has neither the shim's memory nor the runtime options.
type bundleRecord struct {
	Namespace string `json:"namespace"`
	StateDir  string `json:"state_dir"`
}

const bundleRecordFile = "rtshim.json"

func writeBundleRecord(bundle string, rec bundleRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, bundleRecordFile), b, 0o600)
}

func readBundleRecord(bundle string) (*bundleRecord, error) {
	b, err := os.ReadFile(filepath.Join(bundle, bundleRecordFile))
	if err != nil {
		return nil, err
	}
	var rec bundleRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", bundleRecordFile, err)
	}
	if !strings.HasPrefix(rec.StateDir, "/") {
		return nil, fmt.Errorf("%s: state_dir %q is not absolute", bundleRecordFile, rec.StateDir)
	}
	return &rec, nil
}
