package wrapper

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/signal"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/rtcontainer"
)

// stateDir is the state dir container inv.ID() was created with: the one its bundle record
// names (runc state gives the bundle), else the config's. "" when neither is known.
func (w Wrapper) stateDir(ctx context.Context, inv Invocation, cfg *config.Config, runc string) string {
	if st, err := runtime(runc, inv, inv.ID()).Runc.State(ctx, inv.ID()); err == nil && st.Bundle != "" {
		if rec, err := rtcontainer.ReadBundleRecord(st.Bundle); err == nil {
			return rec.StateDir
		}
	}
	if cfg != nil {
		return cfg.StateDir
	}
	return ""
}

// withStateDir is cfg (or, without a usable config, the defaults) with the container's state dir.
func withStateDir(cfg *config.Config, dir string) *config.Config {
	c := config.Default()
	if cfg != nil {
		cp := *cfg
		c = &cp
	}
	c.StateDir = dir
	return c
}

// kill demotes the container's real-time threads before SIGKILL (see rtcontainer.BeforeKill),
// then hands the command to runc.
func (w Wrapper) kill(inv Invocation, cfg *config.Config, runc string) int {
	sig := "SIGTERM" // runc's default
	if len(inv.Pos) > 1 {
		sig = inv.Pos[1]
	}
	if isSIGKILL(sig) {
		ctx := context.Background()
		if dir := w.stateDir(ctx, inv, cfg, runc); dir != "" {
			w.Host.Demote(ctx, dir, namespace(inv), inv.ID())
		}
	}
	return w.handOver(runc, inv.Args)
}

// isSIGKILL parses a signal the way runc kill takes it: "KILL", "SIGKILL", "9".
func isSIGKILL(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n) == syscall.SIGKILL
	}
	sig, err := signal.ParseSignal(strings.ToUpper(s))
	return err == nil && sig == syscall.SIGKILL
}

// delete runs `runc delete` between the before- and after-delete steps. Only a container runc
// really deleted (or that is gone) gives its budget back: runc refuses to delete a running
// container without --force, and that container keeps its request for later execs. --force
// SIGKILLs the init, so its real-time threads are demoted first.
func (w Wrapper) delete(inv Invocation, cfg *config.Config, runc string) int {
	ctx := context.Background()
	dir := w.stateDir(ctx, inv, cfg, runc)
	if dir == "" {
		fmt.Fprintf(w.Stderr, "runc-rt: %s: state dir unknown (no bundle record, no usable config): its RT budget, if any, is not released\n", inv.ID())
		return w.handOver(runc, inv.Args)
	}
	o := w.options(inv, withStateDir(cfg, dir), runc)
	c, err := w.Host.Lookup(ctx, o)
	if err != nil {
		fmt.Fprintf(w.Stderr, "runc-rt: %v\n", err) // the container is deleted all the same
	}
	if truthy(inv.Flags["force"]) {
		w.Host.Demote(ctx, dir, o.Namespace, o.ID)
	}
	if c != nil {
		c.BeforeDelete(ctx)
	}
	code := runReal(runc, inv.Args, 0)
	if code != 0 {
		if _, err := o.Runtime.InitPID(ctx); err == nil {
			return code // runc refused: the container is still there
		}
	}
	if c != nil {
		err = c.AfterDelete(ctx)
	} else {
		err = w.Host.Forget(ctx, dir, o.Namespace, o.ID)
	}
	if err != nil {
		fmt.Fprintf(w.Stderr, "runc-rt: release RT budget of %s: %v\n", o.ID, err)
	}
	return code
}
