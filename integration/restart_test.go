//go:build linux

package integration

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/harness"
)

// taskPID is the init PID of a running task, from `ctr tasks ls`.
func taskPID(t testing.TB, d *harness.Daemon, id string) int {
	t.Helper()
	for line := range strings.Lines(d.MustCtr(t, "tasks", "ls")) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			if f[2] != "RUNNING" {
				t.Fatalf("task %s is %s", id, f[2])
			}
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no task %s", id)
	return 0
}

// TestContainerdRestart: RT containers keep running, with their policy and budget, while
// containerd restarts; the restarted daemon reconnects to their shims, execs into them, and
// deletes them cleanly.
func TestContainerdRestart(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	rr := map[string]string{"rtshim.io/policy": "rr", "rtshim.io/priority": "20", "rtshim.io/rt-runtime-us": "150000"}
	d.Start(t, harness.RunOpts{ID: "fifo", Annotations: fifo80, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_FIFO")
	d.Start(t, harness.RunOpts{ID: "rr", Annotations: rr, Args: []string{"/bin/schedinfo", "-sleep", "300"}}, "policy=SCHED_RR")
	pids := map[string]int{"fifo": taskPID(t, d, "fifo"), "rr": taskPID(t, d, "rr")}

	d.Restart(t)

	for id, want := range map[string]struct {
		policy   uint32
		prio     uint32
		budgetUS int64
	}{"fifo": {unix.SCHED_FIFO, 80, 100000}, "rr": {unix.SCHED_RR, 20, 150000}} {
		if pid := taskPID(t, d, id); pid != pids[id] {
			t.Errorf("%s: init pid %d after restart, was %d", id, pid, pids[id])
		}
		attr, err := unix.SchedGetAttr(pids[id], 0)
		if err != nil || attr.Policy != want.policy || attr.Priority != want.prio {
			t.Errorf("%s after restart: policy %v (%v), want %d/%d", id, attr, err, want.policy, want.prio)
		}
		if harness.RTGroupSched() {
			if got := harness.ReadInt(t, d.CPUFile(id, "cpu.rt_runtime_us")); got != want.budgetUS {
				t.Errorf("%s after restart: budget %d, want %d", id, got, want.budgetUS)
			}
		}
	}
	if s := harness.ParseSched(t, d.MustCtr(t, "tasks", "exec", "--exec-id", "x", "fifo", "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("exec after restart: %v, want SCHED_OTHER", s)
	}
	d.Remove(t, "fifo")
	d.Remove(t, "rr")
	d.AssertRestored(t, before)
}
