// Package shim is the containerd task service of containerd-shim-rt-v2: the stock runc task
// service, embedded, with Create, Start, Exec, Update and Delete wrapped to do what real-time
// containers need between `runc create` and `runc start`. Every other RPC is the stock one.
package shim

import (
	"context"
	"sync"

	taskapi "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"

	"github.com/rtshim/rtshim/internal/failpoint"
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

	schedSupport sync.Map // runtime binary -> schedulerSupport
}

// rtContainer is what the shim keeps of a container with a real-time request.
type rtContainer struct {
	*rtcontainer.Container
	runtime string // the runc binary the stock service runs
}

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

// Create validates the container's request, grants its budget, runs the stock Create (runc
// create) and applies the policy to the paused init. Nothing of it remains when it fails.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (_ *taskapi.CreateTaskResponse, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("id", r.ID))
	cfg, opts, err := resolveOptions(r.Options)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	r.Options = opts
	c, err := s.prepare(ctx, ns, r, cfg)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if c == nil {
		return s.TTRPCTaskService.Create(ctx, r)
	}
	defer func() {
		if retErr != nil {
			if err := c.Cgroups.Release(ctx, ns, r.ID); err != nil {
				log.G(ctx).WithError(err).Warn("release RT budget after failed create")
			}
		}
	}()
	if err := c.Hit(failpoint.CreateGranted); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	c.Pid, c.runtime = int(resp.Pid), runtimeBinary(r.Options)
	err = c.Hit(failpoint.CreateCreated)
	if err == nil {
		err = s.locateCgroup(ctx, r.ID, c)
	}
	if err == nil {
		err = s.host.ApplyInit(ctx, c.Container)
	}
	if err == nil {
		err = c.Hit(failpoint.CreateApplied)
	}
	if err != nil {
		s.abort(ctx, r.ID)
		return nil, errgrpc.ToGRPC(err)
	}
	s.mu.Lock()
	s.ctrs[r.ID] = c
	s.mu.Unlock()
	return resp, nil
}

// Start verifies, for the init, that every thread of the paused init has the policy before
// letting it execve the program: a container whose policy could not be set never starts.
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	c := s.get(r.ID)
	if c == nil {
		return s.TTRPCTaskService.Start(ctx, r)
	}
	if r.ExecID == "" {
		if err := c.Hit(failpoint.StartBefore); err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		if err := s.host.VerifyInit(ctx, c.Container); err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		return s.TTRPCTaskService.Start(ctx, r)
	}
	return s.TTRPCTaskService.Start(ctx, r)
}

// Exec gives exec'd processes the exec policy (SCHED_OTHER unless asked), never the
// container's: a debug shell must not inherit FIFO 80.
func (s *Service) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) (*ptypes.Empty, error) {
	if c := s.get(r.ID); c != nil && r.Spec != nil {
		if err := s.checkExecPolicy(ctx, c); err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		spec, err := execSpec(r.Spec, c.Req)
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		r.Spec = spec
	}
	return s.TTRPCTaskService.Exec(ctx, r)
}

// Update keeps the CFS quota exemption of real-time containers when a quota is set again
// (docker update --cpus, a kubelet resize) and leaves RT budgets to the shim.
func (s *Service) Update(ctx context.Context, r *taskapi.UpdateTaskRequest) (*ptypes.Empty, error) {
	if c := s.get(r.ID); c != nil && r.Resources != nil {
		res, err := updateResources(r.Resources, c.Req)
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		r.Resources = res
	}
	return s.TTRPCTaskService.Update(ctx, r)
}

// Delete runs the stock Delete (runc delete removes the container's cgroup), then gives the
// budget back up the tree.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	c := s.get(r.ID)
	if c != nil && r.ExecID == "" {
		// An error here stands for a failed cgroup write: quiescing is best effort.
		if err := c.Hit(failpoint.DeleteBefore); err == nil {
			c.Cgroups.Quiesce(ctx, c.Namespace, r.ID)
		}
	}
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	if c != nil {
		// An error here stands for a release that failed (a cgroup write): the claim stays
		// on disk and the next lifecycle on this host gives the budget back.
		err := c.Hit(failpoint.DeleteDeleted)
		if err == nil {
			err = c.Cgroups.Release(ctx, c.Namespace, r.ID)
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("id", r.ID).Error("release RT budget")
		}
		s.mu.Lock()
		delete(s.ctrs, r.ID)
		s.mu.Unlock()
	}
	return resp, nil
}

// abort removes a container whose stock Create succeeded but whose policy could not be set.
func (s *Service) abort(ctx context.Context, id string) {
	if _, err := s.TTRPCTaskService.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: 9, All: true}); err != nil {
		log.G(ctx).WithError(err).Debug("kill aborted container")
	}
	if _, err := s.TTRPCTaskService.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
		log.G(ctx).WithError(err).Warn("delete aborted container")
	}
}
