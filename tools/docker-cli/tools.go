//go:build tools

// Package tools pins the docker CLI (github.com/docker/cli v29.9.3) for `make test-docker`,
// which builds it into _output/tools-docker-cli/bin to drive Docker 29 and Docker 28 (it speaks
// their API versions: 1.56 and 1.51). The +incompatible module has no go.mod: vendor.mod's
// requirements are copied into go.mod, and swarmkit v2.1.3, which vendor.mod names but the Go
// module proxy does not serve, is replaced by the pseudo-version moby/moby/v2 requires. Nothing
// imports it.
package tools

import _ "github.com/docker/cli/cmd/docker"
