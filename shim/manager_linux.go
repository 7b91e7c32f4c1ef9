package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	apitypes "github.com/containerd/containerd/api/types"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"

	"github.com/rtshim/rtshim/rtcontainer"
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

// Start runs the stock start and notes in the bundle (the working directory) which sockets
// the shim serves on, so that Stop can remove them if the shim gets killed.
func (m Manager) Start(ctx context.Context, id string, opts shim.StartOpts) (shim.BootstrapParams, error) {
	params, err := m.Manager.Start(ctx, id, opts)
	if err != nil {
		return params, err
	}
	sockets := []string{params.Address}
	if opts.Debug {
		if debug, err := shim.SocketAddress(ctx, opts.Address, shimGroup(id), true); err == nil {
			sockets = append(sockets, debug)
		}
	}
	if err := os.WriteFile(socketsFile, []byte(strings.Join(sockets, "\n")), 0o600); err != nil {
		log.G(ctx).WithError(err).Warn("record shim sockets")
	}
	return params, nil
}

// shimGroup is the ID the stock manager names the socket after: a pod's containers share
// their sandbox's shim.
func shimGroup(id string) string {
	spec, err := rtcontainer.ReadSpec("config.json")
	if err != nil {
		return id
	}
	for _, label := range []string{"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"} {
		if g, ok := spec.Annotations[label]; ok {
			return g
		}
	}
	return id
}

// socketsFile, in the bundle, lists the sockets the container's shim serves on.
const socketsFile = "rtshim-sockets"

// removeStaleSockets removes the sockets of a shim that died: containerd ≤ 2.2 shims keep
// them in /run/containerd/s, where nothing else would remove them. A socket something still
// answers on belongs to a live shim and stays.
func removeStaleSockets(ctx context.Context, bundle string) {
	b, err := os.ReadFile(filepath.Join(bundle, socketsFile))
	if err != nil {
		return
	}
	for _, addr := range strings.Fields(string(b)) {
		if shim.CanConnect(addr) {
			continue
		}
		if err := shim.RemoveSocket(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.G(ctx).WithError(err).WithField("socket", addr).Warn("remove socket of dead shim")
		}
	}
}

// Stop runs the stock cleanup (runc delete --force, unmount), then releases the budget and
// removes the dead shim's sockets.
func (m Manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	st, err := m.Manager.Stop(ctx, id)
	cwd, cerr := os.Getwd()
	if cerr != nil {
		return st, errors.Join(err, cerr)
	}
	bundle := filepath.Join(filepath.Dir(cwd), id)
	removeStaleSockets(ctx, bundle)
	rec, rerr := readBundleRecord(bundle)
	if rerr != nil {
		if !errors.Is(rerr, os.ErrNotExist) {
			log.G(ctx).WithError(rerr).Warn("read rtshim bundle record")
		}
		return st, err
	}
	if cerr := m.host.Forget(ctx, rec.StateDir, rec.Namespace, id); cerr != nil {
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
