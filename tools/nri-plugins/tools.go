//go:build tools

// Package tools pins containers/nri-plugins, the NRI route that issue 15 compares rtshim with:
// `make tools-nri` tries to build its balloons resource policy from this module into
// _output/tools-nri/bin and records the outcome for the benchmark report. v0.10.1 is the only
// release the Go module proxy serves. Nothing imports this package.
package tools

import (
	_ "github.com/containers/nri-plugins/cmd/plugins/balloons"
)
