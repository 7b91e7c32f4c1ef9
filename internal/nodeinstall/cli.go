package nodeinstall

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// restartHint is what the operator does after an install or an uninstall: containerd reads
// its configuration only when it starts (running containers and their shims go on).
const restartHint = "restart containerd to load the change (systemd: systemctl restart containerd); running containers are not affected"

// Run is rtshim-node-install's command line:
//
//	rtshim-node-install [flags] install [--wait]
//	rtshim-node-install [flags] uninstall
//
// `install --wait` (the DaemonSet's command) installs, then waits until ctx is done (the pod is
// deleted: SIGTERM) and uninstalls.
func Run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rtshim-node-install", flag.ContinueOnError)
	fs.SetOutput(out)
	o := Options{Log: out}
	fs.StringVar(&o.HostRoot, "host-root", "/host", "where the node's paths are mounted")
	fs.StringVar(&o.BinDir, "bin-dir", "/usr/local/bin", "node directory for the binaries")
	fs.StringVar(&o.ConfigDir, "config-dir", "/etc/containerd", "node directory of containerd's config.toml")
	fs.StringVar(&o.Source, "source", "/opt/rtshim", "the files to install: bin/, rtshim.toml, containerd-rt.toml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd := fs.Arg(0); {
	case cmd == "install" && (fs.NArg() == 1 || fs.NArg() == 2 && fs.Arg(1) == "--wait"):
		if err := Install(o); err != nil {
			return fmt.Errorf("install: %w", err)
		}
		fmt.Fprintln(out, "rtshim installed; "+restartHint)
		if fs.NArg() == 1 {
			return nil
		}
		<-ctx.Done()
		fallthrough
	case cmd == "uninstall" && fs.NArg() == 1:
		if err := Uninstall(o); err != nil {
			return fmt.Errorf("uninstall: %w", err)
		}
		fmt.Fprintln(out, "rtshim uninstalled; "+restartHint)
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("usage: rtshim-node-install [flags] install [--wait] | uninstall")
	}
}
