//go:build linux

package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RunOpts describes a container for Daemon.Run. Its rootfs is the Env's.
type RunOpts struct {
	ID          string            // container id; default run-<n>
	Runtime     string            // default RTRuntime; StockRuntime for the control
	RuncBinary  string            // --runc-binary: the runc the stock runc shim runs (runc-rt); default runc from PATH
	ConfigPath  string            // --runtime-config-path (ctr ignores it for io.containerd.runc.v2)
	Annotations map[string]string // OCI annotations (--annotation k=v)
	Env         []string          // extra environment, "K=V"
	Privileged  bool              // --privileged: all capabilities, host devices
	Cgroup      string            // --cgroup: linux.cgroupsPath; default /<namespace>/<id>
	CPUQuota    int64             // linux.resources.cpu.quota in µs (--cpu-quota); 0: unset
	CPUPeriod   uint64            // linux.resources.cpu.period in µs (--cpu-period); 0: unset
	CPUSetCPUs  string            // --cpuset-cpus: linux.resources.cpu.cpus
	Detach      bool              // return once started; output goes to d.OutputFile(ID)
	Args        []string          // the process: path in the rootfs and arguments
}

// args is ctr's command line for o.
func (o RunOpts) args(d *Daemon) []string {
	args := []string{"run", "--runtime", o.Runtime}
	if o.RuncBinary != "" {
		args = append(args, "--runc-binary", o.RuncBinary)
	}
	if o.Detach {
		args = append(args, "--detach", "--log-uri", "file://"+d.OutputFile(o.ID))
	} else {
		args = append(args, "--rm", "--fifo-dir", filepath.Join(d.Dir, "fifo"))
	}
	if o.ConfigPath != "" {
		args = append(args, "--runtime-config-path", o.ConfigPath)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Annotations)) {
		args = append(args, "--annotation", k+"="+o.Annotations[k])
	}
	for _, e := range o.Env {
		args = append(args, "--env", e)
	}
	if o.Privileged {
		args = append(args, "--privileged")
	}
	if o.Cgroup != "" {
		args = append(args, "--cgroup", o.Cgroup)
	}
	if o.CPUQuota != 0 {
		args = append(args, "--cpu-quota", strconv.FormatInt(o.CPUQuota, 10))
	}
	if o.CPUPeriod != 0 {
		args = append(args, "--cpu-period", strconv.FormatUint(o.CPUPeriod, 10))
	}
	if o.CPUSetCPUs != "" {
		args = append(args, "--cpuset-cpus", o.CPUSetCPUs)
	}
	return append(append(args, "--rootfs", d.env.Rootfs, o.ID), o.Args...)
}

// Run runs a container with ctr run (--rm unless Detach) and returns its combined stdout and
// stderr (with ctr's, less its cgroup v1 warning) and exit status. err is set when ctr itself
// failed (the container could not be created or started: err quotes ctr's message) or timed
// out (the Ctr timeout).
func (d *Daemon) Run(t testing.TB, o RunOpts) (out string, exitCode int, err error) {
	t.Helper()
	if o.ID == "" {
		o.ID = fmt.Sprintf("run-%d", d.runs.Add(1))
	}
	if o.Runtime == "" {
		o.Runtime = RTRuntime
	}
	timeout := d.env.Timeouts.Ctr
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var combined bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(d.env.ContainerdDir, "ctr"),
		append([]string{"--address", d.Address, "--namespace", d.Namespace}, o.args(d)...)...)
	cmd.Stdout, cmd.Stderr = &combined, &combined
	runErr := cmd.Run()
	out = withoutCtrWarnings(combined.String())

	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
		return out, 0, nil
	case ctx.Err() != nil:
		return out, -1, fmt.Errorf("ctr run %s: timed out after %v; output:\n%s", o.ID, timeout, out)
	case errors.As(runErr, &exitErr):
		code := exitErr.ExitCode()
		// ctr's own failures end in "ctr: <error>" and status 1; the container's status is
		// passed through silently.
		for line := range strings.Lines(out) {
			if msg, ok := strings.CutPrefix(line, "ctr: "); ok {
				return out, code, fmt.Errorf("ctr run %s: %s", o.ID, strings.TrimSpace(msg))
			}
		}
		return out, code, nil
	default:
		return out, -1, fmt.Errorf("ctr run %s: %w", o.ID, runErr)
	}
}

// MustRun runs a container that must exit 0 and returns its output.
func (d *Daemon) MustRun(t testing.TB, o RunOpts) string {
	t.Helper()
	out, code, err := d.Run(t, o)
	if err != nil || code != 0 {
		t.Fatalf("container %s: exit %d, %v; output:\n%s", o.ID, code, err, out)
	}
	return out
}

// Start runs a detached container and waits until its output contains want. The container
// is removed when the test ends, if the test did not remove it (a daemon that outlives the
// test must not keep it).
func (d *Daemon) Start(t testing.TB, o RunOpts, want string) {
	t.Helper()
	o.Detach = true
	if o.ID == "" {
		o.ID = fmt.Sprintf("run-%d", d.runs.Add(1))
	}
	t.Cleanup(func() {
		if err := d.RemoveErr(o.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, _, err := d.Run(t, o); err != nil {
		t.Fatal(err)
	}
	d.WaitForOutput(t, o.ID, want)
}

// WaitForOutput waits (the Output timeout) until detached container id's output contains want.
func (d *Daemon) WaitForOutput(t testing.TB, id, want string) {
	t.Helper()
	WaitForFile(t, d.OutputFile(id), want, d.env.Timeouts.Output)
}

// WaitForFile waits up to timeout for path to contain want.
func WaitForFile(t testing.TB, path, want string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %q within %v, got:\n%s", path, want, timeout, b)
		}
	}
}

// Remove kills and deletes a container and its task, as `docker rm -f` does.
func (d *Daemon) Remove(t testing.TB, id string) {
	t.Helper()
	if err := d.RemoveErr(id); err != nil {
		t.Fatal(err)
	}
}

// RemoveErr is Remove for goroutines and cleanups, which must not call t.Fatal. A container
// that is gone already is no error. (It makes no call beyond kill and delete: the scale
// benchmark times it. `tasks delete --force` sends SIGKILL and deletes once the exit event
// arrives; a kill followed by deletes polled every 50 ms made the time it measured jump in
// 50 ms steps, by whether the task had exited before the first try.)
func (d *Daemon) RemoveErr(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
	defer cancel()
	for {
		_, stderr, err := d.CtrContext(ctx, "", "tasks", "delete", "--force", id)
		if err == nil || strings.Contains(stderr, "not found") {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, stderr, err := d.CtrContext(ctx, "", "containers", "delete", id); err != nil && !strings.Contains(stderr, "not found") {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}
