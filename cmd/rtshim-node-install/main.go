// Command rtshim-node-install installs rtshim on a Kubernetes node from the DaemonSet of
// contrib/kubernetes/install/, and uninstalls it when the pod is deleted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rtshim/rtshim/internal/nodeinstall"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := nodeinstall.Run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rtshim-node-install:", err)
		return 1
	}
	return 0
}
