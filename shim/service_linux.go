// Package shim is the containerd task service of containerd-shim-rt-v2: the stock runc task
// service, embedded, with Create, Start, Exec, Update, Kill and Delete wrapped to run the real-time
// lifecycle (package rtcontainer) around them. Every other RPC is the stock one.
package shim

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/rtcontainer"
)

// Host is where the shim finds the host's procfs and kernel config; tests point it elsewhere.
type Host = rtcontainer.Host

// DefaultHost is the real host.
func DefaultHost() Host { return rtcontainer.DefaultHost() }

// Service wraps the stock runc task service.
type Service struct {
	taskapi.TTRPCTaskService
	host Host

	mu   sync.Mutex
	ctrs map[string]*rtContainer // by container ID; only containers with a request

	versions sync.Map // runc binary -> go-runc Version
	settling atomic.Bool
}

type rtContainer = rtcontainer.Container

// New wraps stock, the runc task service.
func New(stock taskapi.TTRPCTaskService, h Host) *Service {
	return &Service{TTRPCTaskService: stock, host: h, ctrs: map[string]*rtContainer{}}
}

// RegisterTTRPC registers the wrapper, not the stock service, as the task service.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskapi.RegisterTTRPCTaskService(server, s)
	return nil
}

func (s *Service) get(id string) *rtContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctrs[id]
}

// Create prepares the container (request, budget, spec), runs the stock Create (runc create)
// and runs the after-create step on the paused init. Nothing of it remains when it fails, and
// every refusal is logged with its reason: containerd's own log shows only the error's class.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("id", r.ID))
	defer s.settle()
	resp, err := s.create(ctx, r)
	var stock stockError
	switch {
	case errors.As(err, &stock):
		return nil, stock.err // runc's own failure, already in gRPC form
	case err != nil:
		log.G(ctx).WithError(err).Warn("refused to create container")
		return nil, errgrpc.ToGRPC(err)
	}
	return resp, nil
}

// settle gives the heap that a Create grew (the config's TOML, the spec's JSON, runc's output)
// back to the kernel once the create is over: a shim then idles for the container's whole life,
// and a pod's shim, one per pod, with dozens of pods per node, holds that memory for nothing.
// One at a time: creates that overlap settle once, after the last.
func (s *Service) settle() {
	if s.settling.CompareAndSwap(false, true) {
		go func() {
			time.Sleep(settleDelay)
			s.settling.Store(false)
			debug.FreeOSMemory()
		}()
	}
}

// settleDelay lets a burst of creates (a pod's containers) pass before settle runs.
const settleDelay = 100 * time.Millisecond

// stockError is an error of the stock service, passed on as it is.
type stockError struct{ err error }

func (e stockError) Error() string { return e.err.Error() }

func (s *Service) create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	cfg, opts, err := resolveOptions(r.Options)
	if err != nil {
		return nil, err
	}
	r.Options = opts
	rt := &runtime{binary: runtimeBinary(opts), versions: &s.versions}
	c, err := s.host.Prepare(ctx, rtcontainer.Options{Namespace: ns, ID: r.ID, Bundle: r.Bundle, Config: cfg,
		Runtime: rt, SystemdCgroup: runcOptions(opts).GetSystemdCgroup()})
	if err != nil || c == nil {
		if err != nil {
			return nil, err
		}
		return s.stockCreate(ctx, r)
	}
	resp, err := s.stockCreate(ctx, r)
	if err != nil {
		c.Abort(ctx)
		return nil, err
	}
	rt.pid = int(resp.Pid)
	if err := c.AfterCreate(ctx); err != nil {
		s.abort(ctx, r.ID)
		c.Abort(ctx)
		return nil, err
	}
	s.mu.Lock()
	s.ctrs[r.ID] = c
	s.mu.Unlock()
	return resp, nil
}

func (s *Service) stockCreate(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		return nil, stockError{err}
	}
	return resp, nil
}

// Start checks the policy of the paused init before letting it execve the program.
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	if c := s.get(r.ID); c != nil && r.ExecID == "" {
		if err := c.BeforeStart(ctx); err != nil {
			log.G(ctx).WithError(err).WithField("id", r.ID).Warn("refused to start container")
			return nil, errgrpc.ToGRPC(err)
		}
	}
	return s.TTRPCTaskService.Start(ctx, r)
}

// Exec gives exec'd processes the exec policy, never the container's.
func (s *Service) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) (*ptypes.Empty, error) {
	if c := s.get(r.ID); c != nil && r.Spec != nil {
		spec, err := execSpec(ctx, c, r.Spec)
		if err != nil {
			log.G(ctx).WithError(err).WithField("id", r.ID).WithField("exec", r.ExecID).Warn("refused exec")
			return nil, errgrpc.ToGRPC(err)
		}
		r.Spec = spec
	}
	return s.TTRPCTaskService.Exec(ctx, r)
}

func execSpec(ctx context.Context, c *rtContainer, a *ptypes.Any) (*ptypes.Any, error) {
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return nil, fmt.Errorf("exec process spec: %w", err)
	}
	p, ok := v.(*specs.Process)
	if !ok {
		return nil, fmt.Errorf("%w: exec process spec of type %T", errdefs.ErrInvalidArgument, v)
	}
	if err := c.Exec(ctx, p); err != nil {
		return nil, err
	}
	return typeurl.MarshalAnyToProto(p)
}

// Update keeps the CFS quota exemption of real-time containers when a quota is set again
// (docker update --cpus, a kubelet resize) and leaves RT budgets to rtshim.
func (s *Service) Update(ctx context.Context, r *taskapi.UpdateTaskRequest) (*ptypes.Empty, error) {
	if c := s.get(r.ID); c != nil && r.Resources != nil {
		v, err := typeurl.UnmarshalAny(r.Resources)
		if err != nil {
			return nil, errgrpc.ToGRPC(fmt.Errorf("update resources: %w", err))
		}
		if res, ok := v.(*specs.LinuxResources); ok {
			c.Update(res)
			if r.Resources, err = typeurl.MarshalAnyToProto(res); err != nil {
				return nil, errgrpc.ToGRPC(err)
			}
		}
	}
	return s.TTRPCTaskService.Update(ctx, r)
}

// Kill demotes a real-time container's threads before SIGKILL, so that it dies at once whatever
// its budget (see rtcontainer.BeforeKill).
func (s *Service) Kill(ctx context.Context, r *taskapi.KillRequest) (*ptypes.Empty, error) {
	if c := s.get(r.ID); c != nil && (r.ExecID == "" || r.All) {
		c.BeforeKill(ctx, syscall.Signal(r.Signal))
	}
	return s.TTRPCTaskService.Kill(ctx, r)
}

// Delete runs the stock Delete (runc delete removes the container's cgroup) between the
// before- and after-delete steps, which give the budget back up the tree.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	c := s.get(r.ID)
	if c == nil || r.ExecID != "" {
		return s.TTRPCTaskService.Delete(ctx, r)
	}
	c.BeforeDelete(ctx)
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil {
		return resp, err
	}
	if err := c.AfterDelete(ctx); err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("release RT budget")
	}
	s.mu.Lock()
	delete(s.ctrs, r.ID)
	s.mu.Unlock()
	return resp, nil
}

// abort removes a container whose stock Create succeeded but whose after-create step failed.
func (s *Service) abort(ctx context.Context, id string) {
	if _, err := s.TTRPCTaskService.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: 9, All: true}); err != nil {
		log.G(ctx).WithError(err).Debug("kill aborted container")
	}
	if _, err := s.TTRPCTaskService.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
		log.G(ctx).WithError(err).Warn("delete aborted container")
	}
}
