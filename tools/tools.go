//go:build tools

// Package tools pins the versions of the containerd and runc binaries that
// the integration tests run against. Nothing imports it; `make tools` builds
// the commands listed below from this module so their versions come from
// tools/go.mod, not from the root module.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/opencontainers/runc"
)
