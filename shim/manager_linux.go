package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	apitypes "github.com/containerd/containerd/api/types"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
)

// RuntimeName is the runtime type containerd maps to the binary containerd-shim-rt-v2.
const RuntimeName = "io.containerd.rt.v2"

// Manager is the stock runc shim manager with two additions: `delete` (run by containerd
// when a shim died) also gives the container's RT budget back, and `-info` accepts rtshim's
// runtime options so CRI can read runc's features.
type Manager struct {
	shim.Manager
	host Host
}

// NewManager returns the shim manager for containerd-shim-rt-v2.
func NewManager() shim.Manager {
	return Manager{Manager: manager.NewShimManager(RuntimeName), host: DefaultHost()}
}

// Stop runs the stock cleanup (runc delete --force, unmount), then releases the budget.
func (m Manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	st, err := m.Manager.Stop(ctx, id)
	cwd, cerr := os.Getwd()
	if cerr != nil {
		return st, errors.Join(err, cerr)
	}
	rec, rerr := readBundleRecord(filepath.Join(filepath.Dir(cwd), id))
	if rerr != nil {
		if !errors.Is(rerr, os.ErrNotExist) {
			log.G(ctx).WithError(rerr).Warn("read rtshim bundle record")
		}
		return st, err
	}
	cg, cerr := m.host.cgroupManager(rec.StateDir)
	if cerr == nil {
		cerr = cg.Release(ctx, rec.Namespace, id)
	}
	if cerr != nil {
		log.G(ctx).WithError(cerr).WithField("id", id).Error("release RT budget of a dead shim's container")
	}
	return st, err
}

// Info translates runtimeoptions into the runc options the stock manager reads.
func (m Manager) Info(ctx context.Context, optionsR io.Reader) (*apitypes.RuntimeInfo, error) {
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	if len(data) > 0 {
		var a types.Any
		if err := proto.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("parse runtime options: %w", err)
		}
		if typeurl.Is(&a, &runtimeoptions.Options{}) {
			_, translated, err := resolveOptions(&a)
			if err != nil {
				return nil, err
			}
			if data, err = proto.Marshal(translated); err != nil {
				return nil, err
			}
		}
	}
	return m.Manager.Info(ctx, bytes.NewReader(data))
}
