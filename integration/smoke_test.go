//go:build linux

package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// The smoke tests prove the framework with the stock runc shim only.

func TestSmokeStockRuntime(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)

	t.Run("policy", func(t *testing.T) {
		out, code, err := d.Run(t, harness.RunOpts{Runtime: harness.StockRuntime, Args: []string{"/bin/schedinfo"}})
		if err != nil || code != 0 {
			t.Fatalf("exit %d, %v; output:\n%s", code, err, out)
		}
		if !strings.HasPrefix(out, "policy=SCHED_OTHER ") {
			t.Errorf("want policy=SCHED_OTHER, got:\n%s", out)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		out, code, err := d.Run(t, harness.RunOpts{Runtime: harness.StockRuntime, Args: []string{"/bin/sh", "-c", "exit 3"}})
		if err != nil || code != 3 {
			t.Fatalf("want exit 3, got %d, %v; output:\n%s", code, err, out)
		}
	})
	t.Run("ctr error", func(t *testing.T) {
		out, _, err := d.Run(t, harness.RunOpts{Runtime: harness.StockRuntime, Args: []string{"/bin/no-such-program"}})
		if err == nil {
			t.Fatalf("want an error from ctr, got none; output:\n%s", out)
		}
		t.Logf("as expected: %v", err)
	})
	t.Run("removed", func(t *testing.T) {
		if out := d.MustCtr(t, "containers", "ls", "-q"); out != "" {
			t.Errorf("containers left after ctr run --rm: %s", out)
		}
	})
}

// TestSmokeNoRTBudget is the control for the rt shim: with the stock runtime
// even a privileged container cannot switch to SCHED_FIFO on a cgroup v1 host
// with RT group scheduling, because its new cgroup has no RT budget.
func TestSmokeNoRTBudget(t *testing.T) {
	env.RequireRoot(t)
	rtGroupSched := harness.RTGroupSched()
	d := startContainerd(t)

	out, code, err := d.Run(t, harness.RunOpts{
		Runtime:    harness.StockRuntime,
		Privileged: true,
		Args:       []string{"/bin/schedinfo", "-set", "fifo", "10"},
	})
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; output:\n%s", code, err, out)
	}
	want := "set=ok"
	if rtGroupSched {
		want = "set=error:Operation not permitted"
	}
	if !strings.Contains(out, want+"\n") {
		t.Errorf("rt group scheduling %v: want %q, got:\n%s", rtGroupSched, want, out)
	}

	if !rtGroupSched {
		return
	}
	_, _, err = d.Run(t, harness.RunOpts{ID: "idle", Runtime: harness.StockRuntime, Detach: true, Args: []string{"/bin/sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := harness.ReadInt(t, harness.CPUV1(d.CgroupPath("idle"))+"/cpu.rt_runtime_us"); got != 0 {
		t.Errorf("stock runtime: container cgroup cpu.rt_runtime_us = %d, want 0", got)
	}
}

// TestSmokeCleanup checks that a daemon's cleanup leaves nothing behind, also
// when the daemon and its shims were killed under running containers.
func TestSmokeCleanup(t *testing.T) {
	env.RequireRoot(t)
	for _, crash := range []bool{false, true} {
		before := harness.SnapshotCPUTree(t)
		var d *harness.Daemon
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			d = startContainerd(t)
			_, _, err := d.Run(t, harness.RunOpts{
				ID:      "sleeper",
				Runtime: harness.StockRuntime,
				Detach:  true,
				Args:    []string{"/bin/schedinfo", "-sleep", "300"},
			})
			if err != nil {
				t.Fatal(err)
			}
			d.WaitForOutput(t, "sleeper", "policy=SCHED_OTHER")
			if crash {
				pids := harness.ProcessesUnder(d.Dir)
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				for _, pid := range pids {
					for harness.ProcessAlive(pid) {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
		})
		if diff := harness.DiffCPUTree(before, harness.SnapshotCPUTree(t)); len(diff) > 0 {
			t.Errorf("cpu cgroup tree changed:\n%s", strings.Join(diff, "\n"))
		}
		if d == nil {
			continue
		}
		if harness.Exists(d.Dir) {
			t.Errorf("%s left behind", d.Dir)
		}
		if pids := harness.ProcessesUnder(d.Dir); len(pids) > 0 {
			t.Errorf("processes left behind: %v", pids)
		}
		if dirs, err := harness.CgroupTree(d.CgroupPath("")); err != nil || len(dirs) > 0 {
			t.Errorf("cgroups left behind: %v %v", dirs, err)
		}
		if p := filepath.Join(harness.RunContainerdDir, "runc", d.Namespace); harness.Exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
}
