//go:build tools

// Package tools pins Docker Compose (github.com/docker/compose/v5) for `make test-docker`,
// which builds its CLI plugin, docker-compose, into _output/tools-docker-compose/bin and runs
// contrib/docker/compose.yaml with it. v5.6.0 is the newest release the project's Go (1.26.8)
// builds: v5.7.0 and later require go 1.26.10. Nothing imports it.
package tools

import _ "github.com/docker/compose/v5/cmd"
