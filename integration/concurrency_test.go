//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
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

// rootAvailable is the RT runtime the host's root cpu cgroup has left for new groups.
func rootAvailable(t testing.TB) int64 {
	t.Helper()
	root := cgroupV1Path("cpu", "/")
	avail := readCgroupInt(t, filepath.Join(root, "cpu.rt_runtime_us"))
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			avail -= readCgroupInt(t, filepath.Join(root, e.Name(), "cpu.rt_runtime_us"))
		}
	}
	return avail
}

// TestConcurrentCreates: each container has its own shim process, so budgets are granted by
// many processes at once. 50 that fit all run with exactly their budget; of 8 that do not fit,
// exactly as many as fit run and the others fail cleanly; parallel deletes restore the tree.
func TestConcurrentCreates(t *testing.T) {
	requireRoot(t)
	requireRTGroupSched(t)
	d := startContainerd(t)
	before := snapshotCPUTree(t)
	nsFile := cgroupV1Path("cpu", d.CgroupPath("")) + "/cpu.rt_runtime_us"

	const n, each = 50, 10000
	errs := make([]error, n)
	parallel(n, func(i int) {
		ann := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": strconv.Itoa(each)}
		_, _, errs[i] = d.Run(t, RunOpts{ID: fmt.Sprintf("fit-%d", i), Annotations: ann, Detach: true,
			Args: []string{"/bin/schedinfo", "-sleep", "300"}})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("fit-%d: %v", i, err)
			continue
		}
		waitForFile(t, d.OutputFile(fmt.Sprintf("fit-%d", i)), "policy=SCHED_FIFO")
		if got := readCgroupInt(t, d.cpuFile(fmt.Sprintf("fit-%d", i), "cpu.rt_runtime_us")); got != each {
			t.Errorf("fit-%d: cpu.rt_runtime_us = %d, want %d", i, got, each)
		}
	}
	if got := readCgroupInt(t, nsFile); got != n*each {
		t.Errorf("%s = %d, want %d", nsFile, got, n*each)
	}
	parallel(n, func(i int) {
		if err := d.removeErr(t, fmt.Sprintf("fit-%d", i)); err != nil {
			t.Error(err)
		}
	})
	if got := readCgroupInt(t, nsFile); got != 0 {
		t.Errorf("after parallel deletes: %s = %d, want 0", nsFile, got)
	}

	const big = 200000
	fit := int(rootAvailable(t) / big)
	if fit >= 8 {
		t.Fatalf("the host has room for %d containers of %d µs: the test needs fewer than 8 to fit", fit, big)
	}
	ran := make([]bool, 8)
	parallel(8, func(i int) {
		ann := map[string]string{"rtshim.io/policy": "fifo", "rtshim.io/rt-runtime-us": strconv.Itoa(big)}
		_, _, err := d.Run(t, RunOpts{ID: fmt.Sprintf("big-%d", i), Annotations: ann, Detach: true,
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
			waitForFile(t, d.OutputFile(id), "policy=SCHED_FIFO")
			continue
		}
		if exists(cgroupV1Path("cpu", d.CgroupPath(id))) {
			t.Errorf("%s was refused but its cgroup exists", id)
		}
		d.Ctr(t, "containers", "delete", id)
	}
	if count != fit {
		t.Errorf("%d of 8 containers of %d µs ran, want exactly %d (what fits)", count, big, fit)
	}
	parallel(8, func(i int) {
		if ran[i] {
			if err := d.removeErr(t, fmt.Sprintf("big-%d", i)); err != nil {
				t.Error(err)
			}
		}
	})
	d.assertRestored(t, before)
}
