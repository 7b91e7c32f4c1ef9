//go:build linux

package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Ctr runs ctr against the daemon in its namespace, with the Ctr timeout. stderr comes
// without ctr's cgroup v1 deprecation warning; err, when ctr fails, wraps the
// *exec.ExitError and quotes stderr.
func (d *Daemon) Ctr(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
	defer cancel()
	return d.CtrContext(ctx, "", args...)
}

// MustCtr is Ctr that fails the test on error and returns stdout.
func (d *Daemon) MustCtr(t testing.TB, args ...string) string {
	t.Helper()
	stdout, _, err := d.Ctr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout
}

// CtrContext is Ctr in namespace ns ("": the daemon's) until ctx ends. It needs no test, so
// goroutines and cleanups can call it.
func (d *Daemon) CtrContext(ctx context.Context, ns string, args ...string) (stdout, stderr string, err error) {
	if ns == "" {
		ns = d.Namespace
	}
	return ctrAt(ctx, filepath.Join(d.env.ContainerdDir, "ctr"), d.Address, ns, args...)
}

// ctrAt runs the ctr binary against the daemon at address, also for a daemon that is not
// ours any more (teardown after a killed run).
func ctrAt(ctx context.Context, ctr, address, ns string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ctr, append([]string{"--address", address, "--namespace", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	errOut := withoutCtrWarnings(stderr.String())
	if err != nil {
		err = fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut))
	}
	return stdout.String(), errOut, err
}

// withoutCtrWarnings drops the cgroup v1 deprecation warning ctr logs on every call on a
// cgroup v1 host.
func withoutCtrWarnings(s string) string {
	lines := strings.SplitAfter(s, "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool {
		return strings.Contains(l, "The support for cgroup v1 is deprecated")
	})
	return strings.Join(lines, "")
}
