//go:build linux

package integration

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/failpoint"
	"github.com/rtshim/rtshim/internal/harness"
	"github.com/rtshim/rtshim/rtcontainer"
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

// TestRuncWrapperExecPolicy: runc-rt and the shim share one lifecycle core, so runc-rt too
// gives a process exec'd into a container the container's RT exec policy where the runc
// under test applies process.scheduler (runc ≥ 1.2), and refuses it where it does not (runc
// 1.1 ignores process.scheduler, and an exec'd process may finish before anything could be set
// afterwards) with a failed-precondition error that names the runc version, as the shim does
// (TestExecPolicy). make test-compat runs it with runc 1.5 and Debian's runc 1.1.
func TestRuncWrapperExecPolicy(t *testing.T) {
	env.RequireRoot(t)
	d := env.StartContainerd(t, harness.Options{Env: []string{"RTSHIM_RUNC=" + env.Runc}})
	before := harness.SnapshotCPUTree(t)
	ann := map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "80", "rtshim.io/exec-policy": "SCHED_FIFO"}
	d.Start(t, wrapped(harness.RunOpts{ID: "exec-fifo", Annotations: ann, Args: []string{"/bin/schedinfo", "-sleep", "300"}}),
		"policy=SCHED_FIFO priority=80 ")

	out, stderr, err := d.Ctr(t, "tasks", "exec", "--exec-id", "x", "exec-fifo", "/bin/schedinfo")
	if env.RuncIgnoresScheduler() {
		if err == nil {
			t.Errorf("exec-policy SCHED_FIFO through runc-rt with runc %s: ran, want a refusal:\n%s", env.RuncVersion, out)
		}
		for _, w := range []string{"failed precondition", "rtshim.io/exec-policy=SCHED_FIFO", "runc 1.2 or newer",
			"runc " + strconv.Quote(env.RuncVersion)} {
			if !strings.Contains(stderr, w) {
				t.Errorf("refusal with runc %s does not say %q:\n%s", env.RuncVersion, w, stderr)
			}
		}
		if strings.Contains(out, "policy=") {
			t.Errorf("the refused process ran:\n%s", out)
		}
		t.Logf("refused as expected: %s", strings.TrimSpace(stderr))
	} else if s := harness.ParseSched(t, out); err != nil || s["policy"] != "SCHED_FIFO" || s["priority"] != "50" {
		t.Errorf("exec with exec-policy SCHED_FIFO through runc-rt with runc %s: %v (%v), want SCHED_FIFO 50", env.RuncVersion, s, err)
	}
	d.Remove(t, "exec-fifo")
	d.AssertRestored(t, before)
}

// TestRuncWrapperKilled: runc-rt SIGKILLed at any step of a container's lifecycle (the
// failpoints build, run by containerd's stock runc shim as its runc binary) leaves nothing
// behind once the engine has cleaned up after the failure and the next lifecycle has run: no
// budget, claim, cgroup or runc-rt record of the container. Killed once at each step, the
// engine's own retries of the command finish the job; killed in every delete after runc
// delete (the engine's retries too), only the next lifecycle's delete can, for a real-time
// container and for one with a request but no claim (SCHED_BATCH).
func TestRuncWrapperKilled(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	fpDir := os.Getenv("RTSHIM_FP_BIN_DIR")
	if fpDir == "" {
		t.Fatal("RTSHIM_FP_BIN_DIR is not set: run `make integration`, which builds the failpoint runc-rt")
	}
	var rd rtDaemon
	releaseLeftoversOf(t, &rd) // registered first: runs after the daemon's teardown
	d := env.StartContainerd(t, harness.Options{Env: []string{"RTSHIM_RUNC=" + filepath.Join(env.ToolsDir, "runc")}})
	rd.Daemon = d
	before := harness.SnapshotCPUTree(t)
	type kill struct {
		step, how string // how: "once", or "always" (every runc-rt command of the container)
		ann       map[string]string
		want      string // the running container's output
	}
	var kills []kill
	for _, step := range rtcontainer.Steps {
		kills = append(kills, kill{step, "once", fifo80, "policy=SCHED_FIFO"})
	}
	batch := map[string]string{"rtshim.io/policy": "SCHED_BATCH"}
	kills = append(kills, kill{rtcontainer.StepDeleteDeleted, "always", fifo80, "policy=SCHED_FIFO"},
		kill{rtcontainer.StepDeleteDeleted, "always", batch, "policy=SCHED_BATCH"})
	deleteSteps := []string{rtcontainer.StepDeleteBefore, rtcontainer.StepDeleteDeleted}
	for i, k := range kills {
		t.Run(k.step+"/"+k.how+"/"+strings.TrimPrefix(k.want, "policy="), func(t *testing.T) {
			id := fmt.Sprintf("killed-%d-%s", i, k.step)
			ann := maps.Clone(k.ann)
			// Once: runc-rt reads the annotation in every command, and the engine's cleanup can
			// run.
			ann[failpoint.AnnotationPrefix+k.step] = "kill-once:" + filepath.Join(t.TempDir(), "killed")
			if k.how == "always" {
				ann[failpoint.AnnotationPrefix+k.step] = "kill"
			}
			o := harness.RunOpts{ID: id, Annotations: ann, Detach: true, Runtime: harness.StockRuntime,
				RuncBinary: filepath.Join(fpDir, "runc-rt"), Args: []string{"/bin/schedinfo", "-sleep", "300"}}
			_, _, err := d.Run(t, o)
			if slices.Contains(deleteSteps, k.step) {
				if err != nil {
					t.Fatalf("create failed before the delete failpoint: %v", err)
				}
				d.WaitForOutput(t, id, k.want)
				d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
				d.Ctr(t, "tasks", "delete", id) // the failpoint fires here
			} else if err == nil {
				t.Errorf("the container started although runc-rt was killed at %s", k.step)
			}
			// Whatever happened, containerd can delete it.
			d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
			d.Ctr(t, "tasks", "delete", "-f", id)
			if _, stderr, err := d.Ctr(t, "containers", "delete", id); err != nil && !strings.Contains(stderr, "not found") {
				t.Errorf("containers delete %s: %v", id, err)
			}
			// The next lifecycle finishes what is left.
			next := harness.ParseSched(t, d.MustRun(t, wrapped(harness.RunOpts{Annotations: fifo80, Args: []string{"/bin/schedinfo"}})))
			if next["policy"] != "SCHED_FIFO" {
				t.Errorf("next container: %v", next)
			}
			var left []string
			for deadline := time.Now().Add(goneTimeout); ; time.Sleep(100 * time.Millisecond) {
				left = leftOf(t, d, id)
				for _, rec := range wrapperRecords(cgroupfix.RecordName(d.WrapperNamespace(), id)) {
					left = append(left, "runc-rt record left: "+rec)
				}
				if len(left) == 0 || time.Now().After(deadline) {
					break
				}
			}
			for _, l := range left {
				t.Errorf("%s, %v after the next lifecycle", l, goneTimeout)
			}
		})
	}
	d.AssertRestored(t, before)
}
