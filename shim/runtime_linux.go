package shim

import (
	"context"
	"sync"

	gorunc "github.com/containerd/go-runc"
)

// runtime is the shim's side of rtcontainer.Runtime: the init's PID is in the stock Create's
// answer, and the runc binary is the one the runc options name.
type runtime struct {
	pid      int
	binary   string
	versions *sync.Map // binary -> gorunc.Version, shared by the shim's containers
}

func (r *runtime) InitPID(context.Context) (int, error) { return r.pid, nil }

// Version asks the binary once for the shim's lifetime: every exec of every container of a pod
// would otherwise run `runc --version`.
func (r *runtime) Version(ctx context.Context) (gorunc.Version, error) {
	if v, ok := r.versions.Load(r.binary); ok {
		return v.(gorunc.Version), nil
	}
	v, err := (&gorunc.Runc{Command: r.binary}).Version(ctx)
	if err != nil {
		return v, err
	}
	r.versions.Store(r.binary, v)
	return v, nil
}
