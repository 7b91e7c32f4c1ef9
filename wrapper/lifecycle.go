package wrapper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/signal"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/rtcontainer"
)

// stateDir is the state dir container inv.ID() was created with. The config's (the default one
// without a usable config) when that holds the container's record or claim: where it almost
// always is. Else the one its bundle record names (a container with no request, or one created
// before the config changed its state_dir): the record in the working directory when it is the
// container's (containerd's runc shim, Docker's too, runs runc in the bundle), else the one in
// the bundle `runc state` (a runc process) names. "" when neither is known.
func (w Wrapper) stateDir(ctx context.Context, inv Invocation, cfg *config.Config, runc string) string {
	first := configStateDir(cfg)
	if w.Host.Knows(first, namespace(inv), inv.ID()) {
		return first
	}
	if dir, ok := ownBundleStateDir(".", namespace(inv), inv.ID()); ok {
		return dir
	}
	if !runcLacks(inv) { // else runc state would fail
		if st, err := runtime(runc, inv, inv.ID()).Runc.State(ctx, inv.ID()); err == nil && st.Bundle != "" {
			if rec, err := rtcontainer.ReadBundleRecord(st.Bundle); err == nil {
				return rec.StateDir
			}
		}
	}
	if cfg != nil {
		return cfg.StateDir
	}
	return ""
}

// ownBundleStateDir is the state dir the bundle record in dir names, when that record is
// container ns/id's: one without an ID (rtshim 0.1's), or another container's, tells nothing.
func ownBundleStateDir(dir, ns, id string) (string, bool) {
	rec, err := rtcontainer.ReadBundleRecord(dir)
	if err != nil || rec.ID != id || rec.Namespace != ns {
		return "", false
	}
	return rec.StateDir, true
}

// configStateDir is the config's state dir, the default one without a usable config.
func configStateDir(cfg *config.Config) string {
	if cfg != nil {
		return cfg.StateDir
	}
	return config.Default().StateDir
}

// runcLacks reports whether runc has no container inv.ID() under the --root the engine named:
// runc keeps each container's state in <root>/<id>, so without that directory `runc state`
// can only fail (as on the second delete that containerd runs once the shim exited). Without
// --root, runc's default root depends on who runs it: ask runc.
func runcLacks(inv Invocation) bool {
	return inv.Global["root"] != "" && runcGone(namespace(inv), inv.ID())
}

// runcGone reports whether runc has no container id under the --root that claim namespace ns
// names (see namespace): false when it cannot tell.
func runcGone(ns, id string) bool {
	root, ok := strings.CutPrefix(ns, "runc:")
	if !ok || root == "" || id == "" || strings.ContainsRune(id, '/') {
		return false
	}
	_, err := os.Stat(filepath.Join(root, id))
	return errors.Is(err, os.ErrNotExist)
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
		w.demote(ctx, inv, cfg, func() string { return w.stateDir(ctx, inv, cfg, runc) })
	}
	return w.handOver(runc, inv.Args)
}

// demote demotes the container's real-time threads before a SIGKILL (see
// rtcontainer.BeforeKill), in the state dir it was created with. Finding a state dir other
// than the config's takes `runc state`, a child process that was seen to take 4 to 18 s while
// a throttled init was starting (stuck in the kernel itself until it could run); so the
// threads are demoted first through the config's state dir (the default one without a usable
// config), where the container almost always is, and only then is stateDir asked for.
func (w Wrapper) demote(ctx context.Context, inv Invocation, cfg *config.Config, stateDir func() string) {
	first := configStateDir(cfg)
	w.Host.Demote(ctx, first, namespace(inv), inv.ID())
	if dir := stateDir(); dir != "" && dir != first {
		w.Host.Demote(ctx, dir, namespace(inv), inv.ID())
	}
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
	if truthy(inv.Flags["force"]) {
		// --force SIGKILLs the init: demote first (see demote), then find the state dir.
		w.demote(ctx, inv, cfg, func() string { return "" })
	}
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
	if truthy(inv.Flags["force"]) && dir != configStateDir(cfg) {
		w.Host.Demote(ctx, dir, o.Namespace, o.ID) // the record's state dir, another one
	}
	if c != nil {
		c.BeforeDelete(ctx)
	}
	// From runc delete on, a runc-rt killed before the end would leave the record and claim of
	// a container that no longer exists: the mark lets the next delete on the host finish.
	pending := (c != nil || w.Host.Holds(dir, o.Namespace, o.ID)) && w.Host.MarkPending(dir, o.Namespace, o.ID) == nil
	code := runReal(runc, inv.Args, 0)
	if code != 0 {
		if _, err := o.Runtime.InitPID(ctx); err == nil {
			if pending {
				w.Host.ClearPending(dir, o.Namespace, o.ID)
			}
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
	} else if pending {
		w.Host.ClearPending(dir, o.Namespace, o.ID)
	}
	w.Host.SweepRecords(ctx, dir, runcGone)
	return code
}
