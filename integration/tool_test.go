//go:build linux

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// runTool runs a command-line client (docker, podman) with the ctr timeout. err, when it fails,
// quotes its stderr and names it as label and args (the caller's part of the command line).
func runTool(environ []string, label string, cmdline []string, args []string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, cmdline[0], append(cmdline[1:], args...)...)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("%s %s: %w: %s", label, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}
