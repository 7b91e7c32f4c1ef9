package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/rtshim/rtshim/internal/doctor"
	"github.com/rtshim/rtshim/internal/status"
)

const helpReap = `    reap NAMESPACE ID [--address SOCKET] [--state-dir DIR] [--force]
        Finish an orphaned container, one rtshim status marks ORPHANED: its shim is
        gone (and so was containerd's cleanup of it), but processes still run in its
        cgroup and hold its RT budget. Refuses while the shim lives or while
        containerd (asked at --address, default /run/containerd/containerd.sock)
        still has the task; then SIGKILLs the cgroup's processes (real-time threads
        demoted first, so a throttled one dies at once), removes runc's state of it
        and gives back its budget, quota exemption and records. --force reaps when
        containerd cannot be asked (it is not running).

`

func (a *app) reap(args []string) int {
	f := a.newFlags("reap", helpReap)
	stateDir := f.String("state-dir", "", "state dir holding the claims")
	force := f.Bool("force", false, "reap when containerd cannot be asked")
	var pos []string
	// NAMESPACE ID may come before or after the flags.
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := f.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, f.help)
		return exitOK
	} else if err != nil {
		fmt.Fprintf(a.stderr, "see 'rtshim reap --help'\n")
		return exitUsage
	}
	pos = append(pos, f.Args()...)
	if len(pos) != 2 {
		fmt.Fprintf(a.stderr, "usage: rtshim reap NAMESPACE ID [--address SOCKET] [--state-dir DIR] [--force]\n")
		return exitUsage
	}
	h := a.hostFor(f)
	o := status.ReapOptions{Address: reapAddress(f.address), Force: *force}
	cfg, err := doctor.ShimConfig(h)
	switch {
	case err == nil:
		o.Runc, o.RuncRoot = cfg.Runc.BinaryName, cfg.Runc.Root
		if *stateDir == "" {
			*stateDir = cfg.StateDir
		}
	case *stateDir == "":
		fmt.Fprintf(a.stderr, "rtshim reap: rtshim config: %v\n(pass --state-dir)\n", err)
		return exitNotReady
	}
	err = status.Reap(context.Background(), status.Host{ProcRoot: h.ProcRoot, StateDir: *stateDir}, pos[0], pos[1], o)
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim reap: %v\n", err)
		return exitNotReady
	}
	fmt.Fprintf(a.stdout, "reaped %s/%s: its processes are gone and everything its claim held is given back\n", pos[0], pos[1])
	return exitOK
}

// reapAddress is the containerd socket reap asks whether it still has the container: --address
// (the shared flag, which also picks the daemon whose rtshim config gives the state dir), else
// containerd's default socket.
func reapAddress(flag string) string {
	if flag == "" {
		return "/run/containerd/containerd.sock"
	}
	return flag
}
