//go:build linux

package integration

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// updateCPU sets a container's CFS quota through containerd's task Update, as `docker update
// --cpus` and a kubelet in-place resize do (ctr has no command for it).
func (d *Daemon) updateCPU(t testing.TB, id string, quota int64, period uint64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(d.Address, client.WithDefaultNamespace(d.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task.Update(ctx, client.WithResources(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}))
}

// TestUpdateKeepsExemption: an Update that sets a quota on an RT container keeps it exempt; on
// a non-RT container it works as with runc.
func TestUpdateKeepsExemption(t *testing.T) {
	requireRoot(t)
	d := startContainerd(t)
	before := snapshotCPUTree(t)
	for _, tc := range []struct {
		id          string
		annotations map[string]string
		want        int64
	}{
		{"rt", fifo80, -1},
		{"plain", nil, 20000},
	} {
		d.start(t, RunOpts{ID: tc.id, Annotations: tc.annotations, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")
		if err := d.updateCPU(t, tc.id, 20000, 100000); err != nil {
			t.Fatalf("%s: update: %v", tc.id, err)
		}
		if got := readCgroupInt(t, d.cpuFile(tc.id, "cpu.cfs_quota_us")); got != tc.want {
			t.Errorf("%s: cpu.cfs_quota_us = %d after update, want %d", tc.id, got, tc.want)
		}
		if got := readCgroupInt(t, d.cpuFile(tc.id, "cpu.cfs_period_us")); got != 100000 {
			t.Errorf("%s: cpu.cfs_period_us = %d after update, want 100000", tc.id, got)
		}
		d.remove(t, tc.id)
	}
	d.assertRestored(t, before)
}
