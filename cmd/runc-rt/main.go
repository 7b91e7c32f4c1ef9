// runc-rt is a runc-compatible command that gives containers real-time scheduling, for engines
// that run an OCI runtime binary: Docker's path runtimes, Podman --runtime, CRI-O, containerd's
// BinaryName. It hands every command to the real runc ($RTSHIM_RUNC, or the rtshim config's
// runc.binary_name).
package main

import (
	"os"

	"github.com/rtshim/rtshim/rtcontainer"
	"github.com/rtshim/rtshim/wrapper"
)

func main() {
	os.Exit(wrapper.Wrapper{Host: rtcontainer.DefaultHost(), Stderr: os.Stderr}.Main(os.Args[1:]))
}
