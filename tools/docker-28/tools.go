//go:build tools

// Package tools pins Docker 28 (github.com/docker/docker v28.5.2, the last Docker whose
// containerd client is 2.1 but which ships with a containerd 1.7 daemon) for `make test-docker`,
// which builds its dockerd into _output/tools-docker-28/bin and runs it against containerd 1.7
// (tools/containerd-1.7). The +incompatible module has no go.mod: its vendor.mod's requirements
// and excludes are copied into go.mod, without which the build picks versions it does not
// compile with. Nothing imports it.
package tools

import _ "github.com/docker/docker/cmd/dockerd"
