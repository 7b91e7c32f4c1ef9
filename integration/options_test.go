//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestRuncOptionsForm: the shim works as runtime_type io.containerd.runc.v2 with its binary in
// place of the stock one (containerd's runtime_path), where options arrive as runc options and
// the config comes from $RTSHIM_CONFIG.
func TestRuncOptionsForm(t *testing.T) {
	env.RequireRoot(t)
	pathDir := t.TempDir()
	if err := os.Symlink(filepath.Join(env.BinDir, "containerd-shim-rt-v2"), filepath.Join(pathDir, "containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, t.TempDir(), "rtshim.toml", "[defaults]\npriority = 70\n")
	d := env.StartContainerd(t, harness.Options{PathDir: pathDir, Env: []string{"RTSHIM_CONFIG=" + config}})
	before := harness.SnapshotCPUTree(t)
	out := d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Annotations: map[string]string{"rtshim.io/policy": "fifo"},
		Args: []string{"/bin/schedinfo"}})

	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
		t.Errorf("runc options form: %v, want SCHED_FIFO 70 (priority from $RTSHIM_CONFIG)", s)
	}
	out = d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Args: []string{"/bin/sh", "-c", "echo plain; exit 0"}})
	if out != "plain\n" {
		t.Errorf("plain container: %q", out)
	}
	d.AssertRestored(t, before)
}

// TestShimCgroup: the runc option ShimCgroup puts the shim process in that cgroup, as it does
// for the stock runc shim (the control), in the runc options form (io.containerd.runc.v2
// resolving to our binary). containerd ≥ 2.3 passes the option in its bootstrap message on the
// start command's stdin, containerd ≤ 2.2 as the bare options; the shim must read both.
func TestShimCgroup(t *testing.T) {
	env.RequireRoot(t)
	pathDir := t.TempDir()
	if err := os.Symlink(filepath.Join(env.BinDir, "containerd-shim-rt-v2"), filepath.Join(pathDir, "containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	d := env.StartContainerd(t, harness.Options{PathDir: pathDir})
	// The stock shim the daemon would find without pathDir, named by its path.
	stock := filepath.Join(env.ContainerdDir, "containerd-shim-runc-v2")
	if !harness.Exists(stock) {
		stock = filepath.Join(env.ToolsDir, "containerd-shim-runc-v2")
	}
	for _, tc := range []struct{ name, runtime, wantShim string }{
		{"stock", stock, "containerd-shim-runc-v2"},
		{"rtshim", harness.StockRuntime, "containerd-shim-rt-v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "shimcg-" + tc.name
			rel := "/" + d.Namespace + "/shim-" + tc.name
			dir := harness.CPUV1(rel)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// The shim must be gone before its cgroup can go: remove the container first.
			t.Cleanup(func() {
				if err := d.RemoveErr(id); err != nil && !strings.Contains(err.Error(), "not found") {
					t.Error(err)
				}
				if pid := waitShimGone(d, id, 10*time.Second); pid != 0 {
					t.Errorf("shim %d of %s still running", pid, id)
				}
				if err := harness.RemoveCgroup(dir); err != nil {
					t.Error(err)
				}
			})
			runWithShimCgroup(t, d, id, tc.runtime, rel)

			pid := d.ShimPID(t, id)
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(exe) != tc.wantShim {
				t.Fatalf("shim of %s is %s, want %s", id, exe, tc.wantShim)
			}
			if got := harness.CPUCgroupOf(t, pid); got != rel {
				t.Errorf("shim %d (%s) is in cpu cgroup %s, want ShimCgroup %s", pid, exe, got, rel)
			}
			if procs := harness.CgroupProcs(dir); !slices.Contains(procs, pid) {
				t.Errorf("%s/cgroup.procs = %v, want the shim %d in it", dir, procs, pid)
			}
		})
	}
}

// runWithShimCgroup starts container id (/bin/sleep from the test rootfs) through runtime with
// the runc option ShimCgroup = shimCgroup, which ctr cannot set, with containerd's client.
func runWithShimCgroup(t testing.TB, d *harness.Daemon, id, runtime, shimCgroup string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), env.Timeouts.Ctr)
	defer cancel()
	ctr, err := d.Client(t).NewContainer(ctx, id, client.WithRuntime(runtime, nil),
		client.WithNewSpec(oci.WithDefaultSpec(), oci.WithRootFSPath(env.Rootfs), oci.WithProcessArgs("/bin/sleep", "300")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO, client.WithShimCgroup(shimCgroup))
	if err != nil {
		t.Fatalf("new task of %s with ShimCgroup %s: %v", id, shimCgroup, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitShimGone waits up to timeout for container id's shim to exit; it returns the pid of one
// still running, or 0.
func waitShimGone(d *harness.Daemon, id string, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		pid := d.FindShim(id)
		if pid == 0 || !harness.ProcessAlive(pid) {
			return 0
		}
		if time.Now().After(deadline) {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestContribContainerdConfig: the runtime entries in contrib/containerd/config.toml are a
// config containerd accepts.
func TestContribContainerdConfig(t *testing.T) {
	env.RequireRoot(t)
	b, err := os.ReadFile("../contrib/containerd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the version line: the generated config has its own.
	body := strings.Replace(string(b), "version = 3\n", "", 1)
	d := startContainerd(t, body)
	if out := d.MustCtr(t, "plugins", "ls"); !strings.Contains(out, "io.containerd.runtime.v2") && !strings.Contains(out, "task") {
		t.Errorf("plugins ls:\n%s", out)
	}
}
