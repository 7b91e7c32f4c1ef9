//go:build linux

package harness

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Client is containerd's Go client of the daemon in its namespace, for what ctr cannot do
// (task Update) or shows only as text (the init's pid). t.Cleanup closes it.
func (d *Daemon) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(d.Address, client.WithDefaultNamespace(d.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Task loads container id's task.
func (d *Daemon) Task(ctx context.Context, t testing.TB, id string) client.Task {
	t.Helper()
	c, err := d.Client(t).LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// PID is the pid of container id's init.
func (d *Daemon) PID(t testing.TB, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
	defer cancel()
	return int(d.Task(ctx, t, id).Pid())
}

// UpdateCPU sets a running container's CFS quota through containerd's task Update, as `docker
// update --cpus` and a kubelet in-place resize do (ctr has no command for it).
func (d *Daemon) UpdateCPU(t testing.TB, id string, quota int64, period uint64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.env.Timeouts.Ctr)
	defer cancel()
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}
	return d.Task(ctx, t, id).Update(ctx, client.WithResources(res))
}
