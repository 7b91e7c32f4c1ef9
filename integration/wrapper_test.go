//go:build linux

package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// wrapped runs o through the stock runc shim with runc-rt as its runc binary (containerd's
// BinaryName, as Docker's path runtimes and Podman use a runtime binary).
func wrapped(o harness.RunOpts) harness.RunOpts {
	o.Runtime, o.RuncBinary = harness.StockRuntime, filepath.Join(env.BinDir, "runc-rt")
	return o
}

// TestRuncWrapper: runc-rt gives the same results as the shim through an engine that only
// runs a runc binary: policy at the first instruction, budget while running and given back on
// delete, exec policy, refusals with the reason, passthrough for everything else.
func TestRuncWrapper(t *testing.T) {
	env.RequireRoot(t)
	d := env.StartContainerd(t, harness.Options{Env: []string{"RTSHIM_RUNC=" + filepath.Join(env.ToolsDir, "runc")}})
	before := harness.SnapshotCPUTree(t)

	out := d.MustRun(t, wrapped(harness.RunOpts{ID: "first", Annotations: fifo80, Args: []string{"/bin/schedinfo"}}))
	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "80" {
		t.Errorf("runc-rt: %v, want SCHED_FIFO 80", s)
	}
	out, code, err := d.Run(t, wrapped(harness.RunOpts{ID: "plain", Args: []string{"/bin/sh", "-c", "echo plain"}}))
	if err != nil || code != 0 || out != "plain\n" {
		t.Errorf("passthrough: %q, exit %d, %v", out, code, err)
	}

	d.Start(t, wrapped(harness.RunOpts{ID: "long", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "300"}}), "policy=SCHED_FIFO")
	if harness.RTGroupSched() {
		if got := harness.ReadInt(t, d.CPUFile("long", "cpu.rt_runtime_us")); got != 100000 {
			t.Errorf("budget %d while running, want 100000", got)
		}
	}
	if s := harness.ParseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "long", "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("exec through runc-rt: %v, want SCHED_OTHER", s)
	}
	d.Remove(t, "long")

	bad := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "150"}
	if out, _, err := d.Run(t, wrapped(harness.RunOpts{ID: "bad", Annotations: bad, Args: []string{"/bin/true"}})); err == nil ||
		!strings.Contains(err.Error(), `rtshim.io/priority="150"`) {
		t.Errorf("bad priority through runc-rt: %v\n%s", err, out)
	}
	d.Ctr(t, "containers", "delete", "bad")
	d.AssertRestored(t, before)
	if recs, err := filepath.Glob(filepath.Join(harness.StateDir, "wrapper", "*")); err != nil || len(recs) > 0 {
		for _, r := range recs {
			if strings.Contains(r, d.Namespace) {
				t.Errorf("wrapper record left: %s", r)
			}
		}
	}
}
