// containerd-shim-rt-v2 is the containerd shim for runtime type io.containerd.rt.v2: the stock
// runc shim, plus real-time scheduling for the containers that ask for it.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/shim"

	rtshim "github.com/rtshim/rtshim/shim"
)

func main() {
	shim.Run(context.Background(), rtshim.NewManager())
}
