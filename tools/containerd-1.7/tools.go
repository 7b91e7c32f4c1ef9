//go:build tools

// Package tools pins containerd 1.7 (the daemon Docker 27 and 28 ship with) for `make
// test-docker`: containerd, ctr and the stock runc shim of the newest 1.7 release are built
// from this module into _output/tools-containerd-1.7/bin, and Docker 28 runs against that
// daemon. containerd 1.7 cannot start containerd-shim-rt-v2 (a containerd 2.x shim): the test
// checks what the user is told, and runs runc-rt as Docker's path runtime instead. Nothing
// imports it.
package tools

import (
	_ "github.com/containerd/containerd/cmd/containerd"
	_ "github.com/containerd/containerd/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/cmd/ctr"
)
