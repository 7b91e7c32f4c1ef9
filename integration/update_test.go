//go:build linux

package integration

import (
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestUpdateKeepsExemption: an Update that sets a quota on an RT container keeps it exempt; on
// a non-RT container it works as with runc.
func TestUpdateKeepsExemption(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	for _, tc := range []struct {
		id          string
		annotations map[string]string
		want        int64
	}{
		{"rt", fifo80, -1},
		{"plain", nil, 20000},
	} {
		d.Start(t, harness.RunOpts{ID: tc.id, Annotations: tc.annotations, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=")
		if err := d.UpdateCPU(t, tc.id, 20000, 100000); err != nil {
			t.Fatalf("%s: update: %v", tc.id, err)
		}
		if got := harness.ReadInt(t, d.CPUFile(tc.id, "cpu.cfs_quota_us")); got != tc.want {
			t.Errorf("%s: cpu.cfs_quota_us = %d after update, want %d", tc.id, got, tc.want)
		}
		if got := harness.ReadInt(t, d.CPUFile(tc.id, "cpu.cfs_period_us")); got != 100000 {
			t.Errorf("%s: cpu.cfs_period_us = %d after update, want 100000", tc.id, got)
		}
		d.Remove(t, tc.id)
	}
	d.AssertRestored(t, before)
}
