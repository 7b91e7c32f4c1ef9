package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	apitypes "github.com/containerd/containerd/api/types"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"

	"github.com/rtshim/rtshim/internal/failpoint"
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

// Start runs the stock start on the runtime options in the form it reads (see
// legacyStartInput) and notes in the bundle (the working directory) which sockets the shim
// serves on, so that Stop can remove them if the shim gets killed.
func (m Manager) Start(ctx context.Context, id string, opts shim.StartOpts) (shim.BootstrapParams, error) {
	if err := refuseOldDaemon(os.Args[1:]); err != nil {
		return shim.BootstrapParams{}, err
	}
	params, err := m.stockStart(ctx, id, opts)
	if err != nil {
		return params, err
	}
	sockets := []string{params.Address}
	if opts.Debug {
		if debug, err := shim.SocketAddress(ctx, opts.Address, shimGroup(id), true); err == nil {
			sockets = append(sockets, debug)
		}
	}
	// Best effort, and silent: containerd reads what `shim start` writes to stdout and stderr
	// as its answer, so a log line here would break the start. Without the file, only the
	// removal of a killed shim's sockets is lost.
	_ = os.WriteFile(socketsFile, []byte(strings.Join(sockets, "\n")), 0o600)
	return params, nil
}

// stockStart runs the stock Start with stdin holding what containerd ≤ 2.2 writes there,
// whichever containerd started the shim. It returns its errors and logs nothing: containerd
// takes the start command's stdout and stderr together as its answer.
func (m Manager) stockStart(ctx context.Context, id string, opts shim.StartOpts) (shim.BootstrapParams, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return shim.BootstrapParams{}, err
	}
	input, err := io.ReadAll(io.LimitReader(os.Stdin, maxStartInput+1))
	if err != nil {
		return shim.BootstrapParams{}, fmt.Errorf("read start parameters from stdin: %w", err)
	}
	if len(input) > maxStartInput {
		return shim.BootstrapParams{}, fmt.Errorf("start parameters on stdin exceed %d bytes", maxStartInput)
	}
	legacy, err := legacyStartInput(input, id, ns)
	if err != nil {
		return shim.BootstrapParams{}, err
	}
	// The stock Start reads os.Stdin itself and takes no reader: give it a pipe holding the
	// legacy form for the call. `start` is a short-lived command that does nothing else.
	r, w, err := os.Pipe()
	if err != nil {
		return shim.BootstrapParams{}, fmt.Errorf("pipe for the start parameters: %w", err)
	}
	go func() {
		// If Start returns without reading (the shim of the container's group runs already),
		// closing r makes this write fail with EPIPE, which ends the goroutine.
		_, _ = w.Write(legacy)
		w.Close()
	}()
	stdin := os.Stdin
	os.Stdin = r
	defer func() {
		os.Stdin = stdin
		r.Close()
	}()
	return m.Manager.Start(ctx, id, opts)
}

// shimGroup is the ID the stock manager names the socket after: a pod's containers share
// their sandbox's shim. Like the stock manager, it decodes only the spec's annotations:
// decoding the whole spec took a millisecond of every `shim start` with containerd at debug
// level, most of it building encoding/json's field tables of the spec's types in this fresh
// process.
func shimGroup(id string) string {
	b, err := os.ReadFile("config.json")
	if err != nil {
		return id
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
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
	cwd, err := os.Getwd()
	if err != nil {
		st, serr := m.Manager.Stop(ctx, id)
		return st, errors.Join(serr, err)
	}
	bundle := filepath.Join(filepath.Dir(cwd), id)
	if failpoint.Enabled {
		// Only the failpoints build reads the spec: decoding it took a few milliseconds of
		// every delete (this is a fresh process), tens on a loaded host.
		if spec, err := rtcontainer.ReadSpec(filepath.Join(bundle, "config.json")); err == nil {
			if err := failpoint.Hook(spec.Annotations)(rtcontainer.StepCleanupBefore); err != nil {
				return shim.StopStatus{}, err
			}
		}
	}
	rec, rerr := rtcontainer.ReadBundleRecord(bundle)
	if rerr == nil {
		// The stock cleanup is `runc delete --force`, which SIGKILLs the init and waits for it.
		m.host.Demote(ctx, rec.StateDir, rec.Namespace, id)
	}
	st, err := m.Manager.Stop(ctx, id)
	removeStaleSockets(ctx, bundle)
	if rerr != nil {
		if !errors.Is(rerr, os.ErrNotExist) {
			log.G(ctx).WithError(rerr).Warn("read rtshim bundle record")
		}
		return st, err
	}
	// containerd runs this cleanup after every shim that exits, also after a delete that gave
	// everything back: only a claim still on disk says the shim died holding it.
	died := m.host.Holds(rec.StateDir, rec.Namespace, id)
	if cerr := m.host.Forget(ctx, rec.StateDir, rec.Namespace, id); cerr != nil {
		log.G(ctx).WithError(cerr).WithField("id", id).Error("release RT budget of a dead shim's container")
	}
	// A shim died: whatever else the crash left (its pod's other containers, an earlier
	// failure) is finished now rather than by a later lifecycle. Reading every claim after
	// every delete made deletes cost more the more containers ran.
	if died {
		if rerr := m.host.Recover(ctx, rec.StateDir); rerr != nil {
			log.G(ctx).WithError(rerr).Warn("release claims of crashed shims")
		}
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
