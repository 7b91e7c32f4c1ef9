// containerd-shim-rt-v2 is the containerd shim for runtime type io.containerd.rt.v2: the stock
// runc shim, plus real-time scheduling for the containers that ask for it.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/pkg/shim"

	"github.com/rtshim/rtshim/internal/version"
	rtshim "github.com/rtshim/rtshim/shim"
)

func main() {
	if versionFlag(os.Args[1:]) {
		fmt.Print(version.Get().Shim(filepath.Base(os.Args[0])))
		return
	}
	shim.Run(context.Background(), rtshim.NewManager())
}

// versionFlag reports whether the command line asks for the version: containerd's shim flag -v
// (which its library would answer with the containerd module's version as the shim's), or
// --version. containerd itself never passes either.
func versionFlag(args []string) bool {
	for _, a := range args {
		switch a {
		case "-v", "--v", "-v=true", "--v=true", "-version", "--version":
			return true
		case "--":
			return false
		}
	}
	return false
}
