//go:build linux

package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// runWrapped runs a container through the stock runc shim with runc-rt as its runc binary
// (containerd's BinaryName, as Docker's path runtimes and Podman use a runtime binary).
func (d *Daemon) runWrapped(t testing.TB, id string, ann map[string]string, detach bool, args ...string) (string, string, error) {
	t.Helper()
	ctr := []string{"run", "--runtime", stockRuntime, "--runc-binary", filepath.Join(binDir, "runc-rt")}
	if detach {
		ctr = append(ctr, "--detach", "--log-uri", "file://"+d.OutputFile(id))
	} else {
		ctr = append(ctr, "--rm")
	}
	for k, v := range ann {
		ctr = append(ctr, "--annotation", k+"="+v)
	}
	return d.Ctr(t, append(append(ctr, "--rootfs", rootfsDir, id), args...)...)
}

// TestRuncWrapper: runc-rt gives the same results as the shim through an engine that only
// runs a runc binary: policy at the first instruction, budget while running and given back on
// delete, exec policy, refusals with the reason, passthrough for everything else.
func TestRuncWrapper(t *testing.T) {
	requireRoot(t)
	d := startContainerdWith(t, DaemonOpts{Env: []string{"RTSHIM_RUNC=" + filepath.Join(toolsDir, "runc")}})
	before := snapshotCPUTree(t)

	out, _, err := d.runWrapped(t, "first", fifo80, false, "/bin/schedinfo")
	if err != nil {
		t.Fatal(err)
	}
	if s := parseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "80" {
		t.Errorf("runc-rt: %v, want SCHED_FIFO 80", s)
	}
	out, _, err = d.runWrapped(t, "plain", nil, false, "/bin/sh", "-c", "echo plain")
	if err != nil || out != "plain\n" {
		t.Errorf("passthrough: %q, %v", out, err)
	}

	if _, _, err := d.runWrapped(t, "long", fifo80, true, "/bin/schedinfo", "-sleep", "300"); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, d.OutputFile("long"), "policy=SCHED_FIFO")
	if exists(cgroupV1Path("cpu", "cpu.rt_runtime_us")) {
		if got := readCgroupInt(t, d.cpuFile("long", "cpu.rt_runtime_us")); got != 100000 {
			t.Errorf("budget %d while running, want 100000", got)
		}
	}
	if s := parseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "long", "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("exec through runc-rt: %v, want SCHED_OTHER", s)
	}
	d.remove(t, "long")

	_, stderr, err := d.runWrapped(t, "bad", map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/priority": "150"}, false, "/bin/true")
	if err == nil || !strings.Contains(stderr, `rtshim.io/priority="150"`) {
		t.Errorf("bad priority through runc-rt: %v\n%s", err, stderr)
	}
	d.Ctr(t, "containers", "delete", "bad")
	d.assertRestored(t, before)
	if recs, err := filepath.Glob(filepath.Join(stateDir, "wrapper", "*")); err != nil || len(recs) > 0 {
		for _, r := range recs {
			if strings.Contains(r, d.Namespace) {
				t.Errorf("wrapper record left: %s", r)
			}
		}
	}
}
