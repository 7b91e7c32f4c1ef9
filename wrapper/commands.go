package wrapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/rtcontainer"
)

// options are the lifecycle options of the container the command line names.
func (w Wrapper) options(inv Invocation, cfg *config.Config, runc string) rtcontainer.Options {
	return rtcontainer.Options{Namespace: namespace(inv), ID: inv.ID(), Bundle: bundle(inv), Config: cfg,
		Runtime: runtime(runc, inv, inv.ID()), SystemdCgroup: truthy(inv.Global["systemd-cgroup"]), Detached: true}
}

func bundle(inv Invocation) string {
	if b := inv.Flags["bundle"]; b != "" {
		return b
	}
	wd, _ := os.Getwd()
	return wd
}

// create prepares the container, runs `runc create`, and runs the after-create step on the
// paused init before returning, as the shim does between create and start.
func (w Wrapper) create(inv Invocation, cfg *config.Config, runc string) int {
	ctx := context.Background()
	o := w.options(inv, cfg, runc)
	rt := runtime(runc, inv, inv.ID())
	rt.PidFile = inv.Flags["pid-file"] // the init's PID for AfterCreate, without a `runc state`
	o.Runtime = rt
	c, err := w.Host.Prepare(ctx, o)
	var specErr *oci.SpecError
	switch {
	case errors.As(err, &specErr):
		// The spec's own process.scheduler, which runc validates itself: its verdict and message
		// are runc's, as they would be without runc-rt.
		return w.handOver(runc, inv.Args)
	case err != nil:
		return w.fail(err)
	case c == nil:
		return w.handOver(runc, inv.Args)
	}
	preserve, _ := strconv.Atoi(inv.Flags["preserve-fds"])
	if code := runReal(runc, inv.Args, preserve); code != 0 {
		c.Abort(ctx)
		return code
	}
	if err := c.AfterCreate(ctx); err != nil {
		runReal(runc, append(globalArgs(inv, "root", "systemd-cgroup", "log", "log-format"), "delete", "--force", c.ID), 0)
		c.Abort(ctx)
		return w.fail(err)
	}
	return 0
}

// start checks the paused init still has its policy before runc start lets it run.
func (w Wrapper) start(inv Invocation, cfg *config.Config, runc string) int {
	ctx := context.Background()
	c, err := w.Host.Lookup(ctx, w.options(inv, cfg, runc))
	if err != nil {
		return w.fail(err)
	}
	if c != nil {
		if err := c.BeforeStart(ctx); err != nil {
			return w.fail(err)
		}
	}
	return w.handOver(runc, inv.Args)
}

// exec gives an exec'd process the exec policy, in the --process file engines use.
func (w Wrapper) exec(inv Invocation, cfg *config.Config, runc string) int {
	ctx := context.Background()
	c, err := w.Host.Lookup(ctx, w.options(inv, cfg, runc))
	if err != nil {
		return w.fail(err)
	}
	if p := inv.Flags["process"]; c != nil && p != "" {
		if err := rewriteProcess(ctx, p, c.Exec); err != nil {
			return w.fail(err)
		}
	}
	return w.handOver(runc, inv.Args)
}

// rewriteProcess runs exec (the container's Exec step) on the process file p.
func rewriteProcess(ctx context.Context, p string, exec func(context.Context, *specs.Process) error) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read exec process %s: %w", p, err)
	}
	var proc specs.Process
	if err := json.Unmarshal(b, &proc); err != nil {
		return fmt.Errorf("%w: exec process %s: %w", errdefs.ErrInvalidArgument, p, err)
	}
	if err := exec(ctx, &proc); err != nil {
		return err
	}
	out, err := json.Marshal(&proc)
	if err != nil {
		return err
	}
	return os.WriteFile(p, out, 0o600)
}

// run (create and start in one) cannot stop between the two: a real-time request is refused
// rather than half applied. Anything else is runc's to apply: a non-real-time policy (nice,
// SCHED_BATCH, SCHED_IDLE) goes into process.scheduler, which runc ≥ 1.2 sets in runc init.
func (w Wrapper) run(inv Invocation, cfg *config.Config, runc string) int {
	spec, err := rtcontainer.ReadSpec(filepath.Join(bundle(inv), "config.json"))
	if err != nil {
		return w.fail(err)
	}
	req, err := oci.ParseRequest(spec, cfg.Rules())
	var specErr *oci.SpecError
	switch {
	case errors.As(err, &specErr), err == nil && req == nil:
		return w.handOver(runc, inv.Args)
	case err != nil:
		return w.fail(err)
	case req.NeedsBudget() || req.Mode == oci.ModeGrant:
		return w.fail(fmt.Errorf("%w: runc run cannot apply a real-time request between create and start: use runc create and runc start",
			errdefs.ErrNotImplemented))
	}
	o := w.options(inv, cfg, runc)
	o.Detached = false // runc applies the policy: keep process.scheduler
	if _, err := w.Host.Prepare(context.Background(), o); err != nil {
		return w.fail(err)
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
