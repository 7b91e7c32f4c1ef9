//go:build linux

package integration

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestTTY: a container with a terminal (ctr run -t, as docker run -it) works through the rt
// shim as through the stock one, RT request or not. script(1) gives ctr the terminal it needs.
//
// The container waits a moment after printing: containerd loses the terminal output of a
// process that exits at once now and then, with the stock shim as with ours (seen here once in
// about 1800 runs under CPU load: `ctr run -t` printed nothing).
func TestTTY(t *testing.T) {
	env.RequireRoot(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) (util-linux) is needed to give ctr a terminal")
	}
	d := startContainerd(t)
	for i, tc := range []struct {
		runtime string
		ann     []string
	}{{harness.StockRuntime, nil}, {harness.RTRuntime, nil}, {harness.RTRuntime, []string{"--annotation", "rtshim.io/policy=fifo"}}} {
		ctr := []string{filepath.Join(env.ContainerdDir, "ctr"), "--address", d.Address, "--namespace", d.Namespace,
			"run", "-t", "--rm", "--runtime", tc.runtime}
		ctr = append(append(ctr, tc.ann...), "--rootfs", env.Rootfs, "tty-"+string(rune('a'+i)), "/bin/sh", "-c", "'tty; sleep 0.2; exit 4'")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// script runs its command through sh: the container's own command is quoted so that
		// exit 4 is the container's status, passed on by ctr, not script's shell's.
		out, err := exec.CommandContext(ctx, "script", "-qec", strings.Join(ctr, " "), "/dev/null").CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !strings.Contains(string(out), "/dev/pts/") || err == nil || !errors.As(err, &exit) || exit.ExitCode() != 4 {
			t.Errorf("%s %v: want a /dev/pts terminal and exit 4, got %v:\n%s", tc.runtime, tc.ann, err, out)
		}
	}
}
