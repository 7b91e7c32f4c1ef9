package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	taskapi "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/rtcontainer"
)

// prepare parses the container's request and, for one that needs anything, rewrites the
// bundle's config.json and grants the budget. It returns nil for containers it passes through.
// The bundle record comes first, so that `containerd-shim-rt-v2 delete` finds the state to
// release whenever this shim dies.
func (s *Service) prepare(ctx context.Context, ns string, r *taskapi.CreateTaskRequest, cfg *oci.Config) (*rtContainer, error) {
	if err := writeBundleRecord(r.Bundle, bundleRecord{Namespace: ns, StateDir: cfg.StateDir}); err != nil {
		return nil, err
	}
	c, err := s.host.Prepare(ctx, rtcontainer.Options{Namespace: ns, ID: r.ID, Bundle: r.Bundle, Config: cfg,
		SystemdCgroup: systemdCgroup(r.Options), Owner: s.host.Self()})
	if err != nil || c == nil {
		return nil, err
	}
	return &rtContainer{Container: c}, nil
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
