// runc-rt is a runc-compatible command that gives containers real-time scheduling, for engines
// that run an OCI runtime binary: Docker's path runtimes, Podman --runtime, CRI-O, containerd's
// BinaryName. It hands every command to the real runc ($RTSHIM_RUNC, or the rtshim config's
// runc.binary_name).
package main

import (
	"fmt"
	"os"

	"github.com/rtshim/rtshim/rtcontainer"
	"github.com/rtshim/rtshim/wrapper"
)

// help is runc-rt's own page, shown for `runc-rt --help` (or -h) alone. Anywhere else
// (runc-rt create --help, runc-rt help) the flag is runc's.
const help = `NAME
    runc-rt - runc with real-time scheduling for containers, for engines that run a runc binary

SYNOPSIS
    runc-rt [runc global flags] COMMAND [flags] [arguments]

DESCRIPTION
    runc-rt takes runc's command line. Around create, start, exec and delete it does what
    containerd-shim-rt-v2 does: it validates a container's real-time request (rtshim.io/
    annotations, or RTSHIM_POLICY, RTSHIM_PRIORITY, ... in the container's environment),
    grants the cgroup v1 RT budget, sets the policy on the paused init before start, gives
    exec'd processes the exec policy, and gives the budget back on delete.

    All of runc's own commands and flags are passed through to the real runc, which runs
    every command, these four included: runc-rt help shows runc's help, and runc-rt
    --version prints rtshim's version line (on stderr), then runc's (on stdout, as runc
    prints it, so that parsers of runc's version keep working).

    Use it as Docker's path runtime (contrib/docker/daemon.json), podman --runtime,
    CRI-O's runtime_path or containerd's BinaryName.

ENVIRONMENT
    RTSHIM_RUNC     the real runc (a name looked up in PATH, or a path); wins over the config
    RTSHIM_CONFIG   the rtshim config; default /etc/containerd/rtshim.toml
    Podman runs the runtime without them, and runc delete without PATH: runc-rt then looks
    for runc in /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; to use another
    runc with Podman, set runc.binary_name in /etc/containerd/rtshim.toml.

FILES
    /etc/containerd/rtshim.toml   runc.binary_name (default "runc"), defaults, limits
    /run/rtshim/                  claims of RT budgets, runc-rt's records of its containers

SEE ALSO
    runc(8), containerd-shim-rt-v2, rtshim(1), docs/docker.md
`

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--help" || os.Args[1] == "-h") {
		fmt.Print(help)
		return
	}
	printVersion(os.Stderr, os.Args[1:])
	os.Exit(wrapper.Wrapper{Host: rtcontainer.DefaultHost(), Stderr: os.Stderr}.Main(os.Args[1:]))
}
