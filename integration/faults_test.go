//go:build linux

package integration

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/failpoint"
)

// TestFailpoints kills the shim, or makes the step fail, at every step between "budget
// granted" and "container started" and during delete (the shim built with -tags failpoints).
// After each, the container can be deleted through containerd, and after the next RT
// container lifecycle at the latest nothing of it remains: no budget, claim, cgroup, shim.
func TestFailpoints(t *testing.T) {
	requireRoot(t)
	requireRTGroupSched(t)
	fpDir := os.Getenv("RTSHIM_FP_BIN_DIR")
	if fpDir == "" {
		t.Fatal("RTSHIM_FP_BIN_DIR is not set: run `make test`, which builds the failpoint shim")
	}
	d := startContainerdWith(t, DaemonOpts{PathDir: fpDir})
	before := snapshotCPUTree(t)
	deleteSteps := []string{failpoint.DeleteBefore, failpoint.DeleteDeleted}
	for _, step := range failpoint.Steps {
		for _, action := range []string{"kill", "error"} {
			t.Run(step+"/"+action, func(t *testing.T) {
				id := step + "-" + action
				ann := maps.Clone(fifo80)
				ann[failpoint.AnnotationPrefix+step] = action
				o := RunOpts{ID: id, Annotations: ann, Detach: true, Args: []string{"/bin/schedinfo", "-sleep", "300"}}
				_, _, err := d.Run(t, o)
				if slices.Contains(deleteSteps, step) {
					if err != nil {
						t.Fatalf("create failed before the delete failpoint: %v", err)
					}
					waitForFile(t, d.OutputFile(id), "policy=SCHED_FIFO")
					d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
					d.Ctr(t, "tasks", "delete", id) // the failpoint fires here
				} else if err == nil {
					t.Errorf("the container started although %s failed", step)
				}
				// Whatever happened, containerd can delete it.
				d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
				d.Ctr(t, "tasks", "delete", "-f", id)
				if _, stderr, err := d.Ctr(t, "containers", "delete", id); err != nil && !strings.Contains(stderr, "not found") {
					t.Errorf("containers delete %s: %v", id, err)
				}
				// The next lifecycle finishes what is left.
				next := parseSched(t, d.mustRun(t, RunOpts{Annotations: fifo80, Args: []string{"/bin/schedinfo"}}))
				if next["policy"] != "SCHED_FIFO" {
					t.Errorf("next container: %v", next)
				}
				assertGone(t, d, id)
			})
		}
	}
	d.assertRestored(t, before)
}

// assertGone fails if anything of container id remains: its cgroup in any hierarchy, its
// claim, or a shim process serving it.
func assertGone(t *testing.T, d *Daemon, id string) {
	t.Helper()
	if dirs, err := cgroupTree(d.CgroupPath(id)); err != nil || len(dirs) > 0 {
		t.Errorf("cgroups of %s left: %v %v", id, dirs, err)
	}
	for _, c := range d.claimsOf(t) {
		if strings.Contains(c, "."+id+".") {
			t.Errorf("claim of %s left: %s", id, c)
		}
	}
	if pid := d.findShim(id); pid != 0 {
		t.Errorf("shim of %s still runs: pid %d", id, pid)
	}
}
