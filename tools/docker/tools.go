//go:build tools

// Package tools pins Docker 29's daemon for `make test-docker`: dockerd from the moby/v2 module
// (v2.0.0-beta.24: Docker 29.8, newer than the 29.8.0 release that its releases/versions.yaml
// names as the last, older than 29.8.1), whose containerd client is 2.3 and which
// supports runtimeType runtimes and docker run --annotation. make test-docker builds it into
// _output/tools-docker/bin and runs contrib/docker/daemon-shim.json with it against the
// tests' containerd 2.4. Nothing imports it.
package tools

import _ "github.com/moby/moby/v2/cmd/dockerd"
