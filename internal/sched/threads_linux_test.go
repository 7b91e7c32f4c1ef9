package sched

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/oci"
)

// childEnv makes the test binary a multi-threaded process that only sleeps, like a paused runc
// init: TestMain runs it when the variable is set.
const childEnv = "RTSHIM_SCHED_TEST_THREADS"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		for range 4 {
			go func() {
				runtime.LockOSThread()
				time.Sleep(time.Minute)
			}()
		}
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDeadlineOnMainThreadOnly: SCHED_DEADLINE goes on the main thread alone (each thread
// would be admitted with the full bandwidth), FIFO on every thread.
func TestDeadlineOnMainThreadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE) to set SCHED_DEADLINE")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	procs := Procs{Root: "/proc"}
	pid := cmd.Process.Pid
	var tids []int
	for deadline := time.Now().Add(5 * time.Second); len(tids) < 5 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tids, _ = procs.Threads(pid)
	}
	if len(tids) < 5 {
		t.Fatalf("child has %d threads, want at least 5", len(tids))
	}
	dl := oci.Sched{Policy: oci.PolicyDeadline, Deadline: &oci.Deadline{Runtime: time.Millisecond, Deadline: 10 * time.Millisecond, Period: 10 * time.Millisecond}}
	if n, err := procs.Apply(pid, dl); err != nil || n != 1 {
		t.Fatalf("Apply DEADLINE: %d threads changed, %v; want 1 (the main thread)", n, err)
	}
	var policies []string
	for _, tid := range tids {
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue
		}
		if (tid == pid) != (a.Policy == unix.SCHED_DEADLINE) {
			t.Errorf("thread %d (main: %v) runs %s", tid, tid == pid, Describe(a))
		}
		policies = append(policies, string(PolicyName(a.Policy)))
	}
	if err := procs.Verify(pid, dl); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// FIFO goes on every thread (the main one from DEADLINE too).
	if _, err := procs.Apply(pid, oci.Sched{Policy: oci.PolicyFIFO, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy != unix.SCHED_FIFO {
			t.Errorf("FIFO: thread %d runs %s (was %s)", tid, Describe(a), strings.Join(policies, ","))
		}
	}
}
