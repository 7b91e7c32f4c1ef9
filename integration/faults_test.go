//go:build linux

package integration

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/internal/harness"
	"github.com/rtshim/rtshim/rtcontainer"
)

// TestFailpoints kills the shim, or makes the step fail, at every step between "budget
// granted" and "container started" and during delete (the shim built with -tags failpoints).
// After each, the container can be deleted through containerd, and once containerd has
// cleaned up after a dead shim (in the background) and the next RT container lifecycle has
// run (it finishes what a failed release left), nothing of it remains: no budget, claim,
// cgroup, shim.
func TestFailpoints(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	fpDir := os.Getenv("RTSHIM_FP_BIN_DIR")
	if fpDir == "" {
		t.Fatal("RTSHIM_FP_BIN_DIR is not set: run `make test`, which builds the failpoint shim")
	}
	d := env.StartContainerd(t, harness.Options{PathDir: fpDir})
	before := harness.SnapshotCPUTree(t)
	deleteSteps := []string{rtcontainer.StepDeleteBefore, rtcontainer.StepDeleteDeleted}
	for _, step := range rtcontainer.Steps {
		for _, action := range []string{"kill", "error"} {
			t.Run(step+"/"+action, func(t *testing.T) {
				id := step + "-" + action
				ann := maps.Clone(fifo80)
				ann[failpoint.AnnotationPrefix+step] = action
				o := harness.RunOpts{ID: id, Annotations: ann, Detach: true, Args: []string{"/bin/schedinfo", "-sleep", "300"}}
				_, _, err := d.Run(t, o)
				if slices.Contains(deleteSteps, step) {
					if err != nil {
						t.Fatalf("create failed before the delete failpoint: %v", err)
					}
					d.WaitForOutput(t, id, "policy=SCHED_FIFO")
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
				next := harness.ParseSched(t, d.MustRun(t, harness.RunOpts{Annotations: fifo80, Args: []string{"/bin/schedinfo"}}))
				if next["policy"] != "SCHED_FIFO" {
					t.Errorf("next container: %v", next)
				}
				assertGone(t, d, id)
			})
		}
	}
	d.AssertRestored(t, before)
}

// assertGone fails if anything of container id remains: its cgroup in any hierarchy, its
// claim, or a shim process serving it. containerd cleans up after a dead shim in the
// background (`containerd-shim-rt-v2 delete`, which waits for `runc delete --force`, which
// waits until the killed init has been reaped by whoever adopted it), so what remains is
// looked at again for a while before it counts.
func assertGone(t *testing.T, d *harness.Daemon, id string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(goneTimeout); ; time.Sleep(100 * time.Millisecond) {
		left = leftOf(t, d, id)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range left {
		t.Errorf("%s, %v after the next lifecycle", l, goneTimeout)
	}
}

// goneTimeout bounds containerd's cleanup after a dead shim.
const goneTimeout = 10 * time.Second

func leftOf(t *testing.T, d *harness.Daemon, id string) (left []string) {
	if dirs, err := harness.CgroupTree(d.CgroupPath(id)); err != nil || len(dirs) > 0 {
		left = append(left, fmt.Sprintf("cgroups of %s left: %v %v", id, dirs, err))
	}
	for _, c := range d.ClaimsOf(t) {
		if strings.Contains(c, "."+id+".") {
			left = append(left, fmt.Sprintf("claim of %s left: %s", id, c))
		}
	}
	if pid := d.FindShim(id); pid != 0 {
		left = append(left, fmt.Sprintf("shim of %s still runs: pid %d", id, pid))
	}
	return left
}
