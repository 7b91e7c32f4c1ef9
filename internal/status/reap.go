package status

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/rtcontainer"
)

// ReapOptions say how rtshim reap confirms that a container is gone before it kills what is
// left of it.
type ReapOptions struct {
	// Address is containerd's socket, asked whether it still has the task (shim claims).
	Address string
	// Force reaps even when containerd cannot be asked.
	Force bool
	// Runc and RuncRoot are the config's runc.binary_name and runc.root, which the shims ran:
	// where runc's state of the container is ("" for runc and its default root).
	Runc, RuncRoot string
}

func (o ReapOptions) runc() string {
	if o.Runc == "" {
		return "runc"
	}
	return o.Runc
}

// Reap finishes an orphaned container: a claim whose owner (shim) is gone while processes still
// run in its cgroup, holding the budget — what a killed shim leaves when the cleanup containerd
// runs for it (`containerd-shim-rt-v2 delete`) is killed too. It refuses while the owner lives
// or while containerd (or, for runc-rt's containers, runc) still knows the container; then it
// demotes and SIGKILLs every process of the cgroup, waits for them to go, removes runc's state
// of it and gives back everything the claim holds.
func Reap(ctx context.Context, h Host, ns, id string, o ReapOptions) error {
	st := cgroupfix.State{Dir: h.StateDir}
	c, err := st.LoadClaim(ns, id)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: no claim of %s/%s in %s", errdefs.ErrNotFound, ns, id, h.StateDir)
	}
	if c.Owner.Alive(h.ProcRoot) {
		return fmt.Errorf("%w: %s/%s: its owner (pid %d) is alive: stop the container through its engine",
			errdefs.ErrFailedPrecondition, ns, id, c.Owner.PID)
	}
	if err := confirmGone(ctx, ns, id, o); err != nil {
		return err
	}
	hier, err := cgroupfix.FindCPU(h.ProcRoot)
	if err != nil {
		return err
	}
	cpu := cgroupfix.DirFS{Root: hier.Mount}
	rc := rtcontainer.Host{ProcRoot: h.ProcRoot}
	rc.Demote(ctx, h.StateDir, ns, id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, _ := cpu.ReadFile(c.Leaf, "cgroup.procs")
		if procs == "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %s after SIGKILL", c.Leaf, strings.Join(strings.Fields(procs), " "))
		}
		for _, f := range strings.Fields(procs) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	runcDelete(ctx, ns, id, o)
	return rc.Forget(ctx, h.StateDir, ns, id)
}

// confirmGone refuses to reap a container containerd (or runc, for runc-rt's) still knows.
func confirmGone(ctx context.Context, ns, id string, o ReapOptions) error {
	if root, ok := strings.CutPrefix(ns, "runc:"); ok {
		out, err := exec.CommandContext(ctx, o.runc(), "--root", root, "state", id).Output()
		if err == nil && strings.Contains(string(out), `"status": "running"`) {
			return fmt.Errorf("%w: %s/%s: runc (--root %s) still runs it: stop it through its engine", errdefs.ErrFailedPrecondition, ns, id, root)
		}
		return nil
	}
	cl, err := client.New(o.Address, client.WithTimeout(5*time.Second))
	if err == nil {
		defer cl.Close()
		_, err = cl.TaskService().Get(namespaces.WithNamespace(ctx, ns), &tasks.GetRequest{ContainerID: id})
		err = errgrpc.ToNative(err)
		switch {
		case err == nil:
			return fmt.Errorf("%w: %s/%s: containerd (%s) still has its task: ctr -n %s task kill -s SIGKILL %s",
				errdefs.ErrFailedPrecondition, ns, id, o.Address, ns, id)
		case errdefs.IsNotFound(err):
			return nil
		}
	}
	if o.Force {
		return nil
	}
	return fmt.Errorf("%w: %s/%s: cannot ask containerd at %s whether it still has the task (%v): pass --address, or --force "+
		"if containerd is not running", errdefs.ErrFailedPrecondition, ns, id, o.Address, err)
}

// runcDelete removes what runc keeps of the container, best effort: a containerd shim's runc
// state is under the config's runc.root (default /run/containerd/runc)/<namespace>, runc-rt's
// under its --root.
func runcDelete(ctx context.Context, ns, id string, o ReapOptions) {
	base := o.RuncRoot
	if base == "" {
		base = "/run/containerd/runc"
	}
	root := filepath.Join(base, ns)
	if r, ok := strings.CutPrefix(ns, "runc:"); ok {
		root = r
	}
	_ = exec.CommandContext(ctx, o.runc(), "--root", root, "delete", "--force", id).Run()
}
