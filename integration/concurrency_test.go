//go:build linux

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// parallel runs f(i) for i in [0, n) at once and waits for all.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

// TestConcurrentCreates: each container has its own shim process, so budgets are granted by
// many processes at once. 50 that fit all run with exactly their budget; of 8 that do not fit,
// exactly as many as fit run and the others fail cleanly; parallel deletes restore the tree.
func TestConcurrentCreates(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	nsFile := harness.CPUV1(d.CgroupPath("")) + "/cpu.rt_runtime_us"

	const n, each = 50, 10000
	errs := make([]error, n)
	parallel(n, func(i int) {
		ann := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": strconv.Itoa(each)}
		_, _, errs[i] = d.Run(t, harness.RunOpts{ID: fmt.Sprintf("fit-%d", i), Annotations: ann, Detach: true,
			Args: []string{"/bin/schedinfo", "-sleep", "300"}})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("fit-%d: %v", i, err)
			continue
		}
		d.WaitForOutput(t, fmt.Sprintf("fit-%d", i), "policy=SCHED_FIFO")
		if got := harness.ReadInt(t, d.CPUFile(fmt.Sprintf("fit-%d", i), "cpu.rt_runtime_us")); got != each {
			t.Errorf("fit-%d: cpu.rt_runtime_us = %d, want %d", i, got, each)
		}
	}
	if got := harness.ReadInt(t, nsFile); got != n*each {
		t.Errorf("%s = %d, want %d", nsFile, got, n*each)
	}
	parallel(n, func(i int) {
		if err := d.RemoveErr(fmt.Sprintf("fit-%d", i)); err != nil {
			t.Error(err)
		}
	})
	if got := harness.ReadInt(t, nsFile); got != 0 {
		t.Errorf("after parallel deletes: %s = %d, want 0", nsFile, got)
	}

	const big = 200000
	fit := int(harness.RootRTAvailable(t) / big)
	if fit >= 8 {
		t.Fatalf("the host has room for %d containers of %d µs: the test needs fewer than 8 to fit", fit, big)
	}
	ran := make([]bool, 8)
	parallel(8, func(i int) {
		ann := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": strconv.Itoa(big)}
		_, _, err := d.Run(t, harness.RunOpts{ID: fmt.Sprintf("big-%d", i), Annotations: ann, Detach: true,
			Args: []string{"/bin/schedinfo", "-sleep", "300"}})
		if err != nil && !strings.Contains(err.Error(), "no RT budget for container") {
			t.Errorf("big-%d failed, but not for lack of budget: %v", i, err)
		}
		ran[i] = err == nil
	})
	count := 0
	for i, ok := range ran {
		id := fmt.Sprintf("big-%d", i)
		if ok {
			count++
			d.WaitForOutput(t, id, "policy=SCHED_FIFO")
			continue
		}
		if harness.Exists(harness.CPUV1(d.CgroupPath(id))) {
			t.Errorf("%s was refused but its cgroup exists", id)
		}
		d.Ctr(t, "containers", "delete", id)
	}
	if count != fit {
		t.Errorf("%d of 8 containers of %d µs ran, want exactly %d (what fits)", count, big, fit)
	}
	parallel(8, func(i int) {
		if ran[i] {
			if err := d.RemoveErr(fmt.Sprintf("big-%d", i)); err != nil {
				t.Error(err)
			}
		}
	})
	d.AssertRestored(t, before)
}
