//go:build tools

// Package tools pins the oldest containerd release the shim supports, for
// `make test-compat`: the daemon, ctr and the stock runc shim of containerd
// 2.0 are built from this module into _output/tools-2.0/bin. Nothing imports
// it. runc is not built here: the compatibility matrix takes runc from the
// main tools module (tools/go.mod) or from Debian.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
