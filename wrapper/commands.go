package wrapper

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/rtcontainer"
)

// create validates and prepares the container, runs `runc create`, and sets the policy on the
// paused init before returning, as the shim does between create and start.
func (w Wrapper) create(inv Invocation, cfg *oci.Config, runc string) int {
	id, ns := inv.ID(), namespace(inv)
	bundle := inv.Flags["bundle"]
	if bundle == "" {
		bundle, _ = os.Getwd()
	}
	ctx := context.Background()
	c, err := w.Host.Prepare(ctx, rtcontainer.Options{Namespace: ns, ID: id, Bundle: bundle, Config: cfg,
		SystemdCgroup: truthy(inv.Global["systemd-cgroup"]), Owner: w.Host.Self(), StripScheduler: true})
	if err != nil {
		return w.fail(inv, err)
	}
	if c == nil {
		return w.handOver(runc, inv.Args)
	}
	preserve, _ := strconv.Atoi(inv.Flags["preserve-fds"])
	if code := runReal(runc, inv.Args, preserve); code != 0 {
		c.Cgroups.Release(ctx, ns, id)
		return code
	}
	err = w.afterCreate(inv, cfg, runc, c, bundle)
	if err != nil {
		runReal(runc, append(globalArgs(inv, "root", "systemd-cgroup", "log", "log-format"), "delete", "--force", id), 0)
		c.Cgroups.Release(ctx, ns, id)
		return w.fail(inv, err)
	}
	return 0
}

func (w Wrapper) afterCreate(inv Invocation, cfg *oci.Config, runc string, c *rtcontainer.Container, bundle string) error {
	pid, err := initPID(runc, inv, c.ID)
	if err != nil {
		return err
	}
	c.Pid = pid
	if err := w.Host.ApplyInit(context.Background(), c); err != nil {
		return err
	}
	// The wrapper exits now: the container's init owns the claim while it lives.
	if err := c.Cgroups.Adopt(c.Namespace, c.ID, cgroupfix.OwnerOf(w.Host.ProcRoot, pid)); err != nil {
		return err
	}
	return saveRecord(cfg, c.Namespace, c.ID, record{Bundle: bundle, Request: c.Req})
}

// start checks the paused init still has its policy before runc start lets it run.
func (w Wrapper) start(inv Invocation, cfg *oci.Config, runc string) int {
	rec, err := loadRecord(cfg, namespace(inv), inv.ID())
	if err != nil {
		return w.fail(inv, err)
	}
	if rec != nil && rec.Request != nil {
		pid, err := initPID(runc, inv, inv.ID())
		if err != nil {
			return w.fail(inv, err)
		}
		c := &rtcontainer.Container{Namespace: namespace(inv), ID: inv.ID(), Req: rec.Request, Pid: pid}
		if err := w.Host.VerifyInit(context.Background(), c); err != nil {
			return w.fail(inv, err)
		}
	}
	return w.handOver(runc, inv.Args)
}

// exec gives an exec'd process the exec policy, in the --process file engines use.
func (w Wrapper) exec(inv Invocation, cfg *oci.Config, runc string) int {
	rec, err := loadRecord(cfg, namespace(inv), inv.ID())
	if err != nil {
		return w.fail(inv, err)
	}
	if p := inv.Flags["process"]; rec != nil && rec.Request != nil && p != "" {
		if err := rewriteProcess(p, rec.Request); err != nil {
			return w.fail(inv, err)
		}
	}
	return w.handOver(runc, inv.Args)
}

func rewriteProcess(p string, req *oci.Request) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read exec process %s: %w", p, err)
	}
	var proc specs.Process
	if err := json.Unmarshal(b, &proc); err != nil {
		return fmt.Errorf("%w: exec process %s: %w", errdefs.ErrInvalidArgument, p, err)
	}
	oci.ExecProcess(&proc, req)
	out, err := json.Marshal(&proc)
	if err != nil {
		return err
	}
	return os.WriteFile(p, out, 0o600)
}

// delete runs runc delete, then gives the budget back. The budget of a container whose
// processes are gone is set to 0 first, as the shim does: runc delete removes the cgroup, and a
// removed cgroup's budget stands in the way of lowering its parent for an RCU grace period.
func (w Wrapper) delete(inv Invocation, cfg *oci.Config, runc string) int {
	if cg, err := w.Host.CgroupManager(cfg.StateDir); err == nil {
		cg.Quiesce(context.Background(), namespace(inv), inv.ID())
	}
	code := runReal(runc, inv.Args, 0)
	w.release(inv, cfg)
	return code
}

// release gives back the container's budget and forgets its record.
func (w Wrapper) release(inv Invocation, cfg *oci.Config) {
	ns, id := namespace(inv), inv.ID()
	cg, err := w.Host.CgroupManager(cfg.StateDir)
	if err == nil {
		err = cg.Release(context.Background(), ns, id)
	}
	if err != nil {
		fmt.Fprintf(w.Stderr, "runc-rt: release RT budget of %s: %v\n", id, err)
	}
	if err := os.Remove(recordPath(cfg, ns, id)); err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(w.Stderr, "runc-rt: %v\n", err)
	}
}

// run (create and start in one) cannot stop between the two: a real-time request is refused
// rather than half applied.
func (w Wrapper) run(inv Invocation, cfg *oci.Config, runc string) int {
	bundle := inv.Flags["bundle"]
	if bundle == "" {
		bundle, _ = os.Getwd()
	}
	spec, err := rtcontainer.ReadSpec(bundle + "/config.json")
	if err == nil {
		var req *oci.Request
		if req, err = oci.ParseRequest(spec, cfg); err == nil && req != nil {
			err = fmt.Errorf("%w: runc run cannot apply a real-time request between create and start: use runc create and runc start",
				errdefs.ErrNotImplemented)
		}
	}
	if err != nil {
		return w.fail(inv, err)
	}
	return w.handOver(runc, inv.Args)
}

// globalArgs repeats the named global flags for a command the wrapper runs itself.
func globalArgs(inv Invocation, names ...string) []string {
	var args []string
	for _, g := range names {
		if v, ok := inv.Global[g]; ok {
			args = append(args, "--"+g+"="+v)
		}
	}
	return args
}
