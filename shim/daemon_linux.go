package shim

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// refuseOldDaemon fails `shim start` with the fix when containerd 1.x runs it: 1.x (Docker ≤ 28
// bundles 1.7) cannot start a containerd 2.x shim, and what it would say is a cryptic dial
// error about the bootstrap JSON it does not understand. The daemon is the binary containerd
// names with -publish-binary; its Go build info says which containerd module it is, without
// running it.
func refuseOldDaemon(args []string) error {
	bin := flagValue(args, "publish-binary")
	if bin == "" {
		return nil
	}
	main, err := goMainPath(bin)
	if err != nil {
		return nil // not a Go binary we can read: let the start go on
	}
	if !strings.HasPrefix(main, "github.com/containerd/containerd/cmd/") {
		return nil // v2 is github.com/containerd/containerd/v2/cmd/...
	}
	return fmt.Errorf("%w: %s is containerd 1.x, which cannot start containerd-shim-rt-v2 (a containerd 2.x shim): "+
		"use containerd 2.0 or newer, or, with Docker 28 or older (which bundle containerd 1.7), runc-rt as a path runtime "+
		"(contrib/docker/daemon.json)", errdefs.ErrNotImplemented, bin)
}

// flagValue finds -name V, -name=V, --name V or --name=V in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		f := strings.TrimLeft(a, "-")
		if f == a {
			continue
		}
		if k, v, ok := strings.Cut(f, "="); ok && k == name {
			return v
		}
		if f == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
