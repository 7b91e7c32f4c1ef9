//go:build tools

// Package tools pins a Docker daemon whose containerd client is 2.x (the moby/v2 module: the
// daemon of Docker 29 and later) for `make test-docker-shim`, which builds dockerd from this
// module into _output/tools-docker/bin to run the shim as a runtimeType runtime
// (contrib/docker/daemon-shim.json). Debian ships only dockerd 20.10, which knows path
// runtimes only. Nothing imports it.
package tools

import _ "github.com/moby/moby/v2/cmd/dockerd"
