package sched

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/oci"
)

// startChild runs a process to change the policy of; it is killed when the test ends.
func startChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func TestApplyAndVerify(t *testing.T) {
	procs := Procs{Root: "/proc"}
	cases := []oci.Sched{
		{Policy: oci.PolicyBatch, Nice: 5},
		{Policy: oci.PolicyIdle},
		{Policy: oci.PolicyOther, Nice: 7, ResetOnFork: true},
	}
	if os.Geteuid() == 0 {
		// The test runs in the host's root cpu cgroup, which has the host's RT budget.
		cases = append(cases, oci.Sched{Policy: oci.PolicyFIFO, Priority: 10}, oci.Sched{Policy: oci.PolicyRR, Priority: 3, ResetOnFork: true})
	}
	for _, s := range cases {
		t.Run(string(s.Policy), func(t *testing.T) {
			pid := startChild(t)
			if err := procs.Verify(pid, s); err == nil {
				t.Fatal("Verify passed before Apply")
			}
			changed, err := procs.Apply(pid, s)
			if err != nil {
				t.Fatal(err)
			}
			if changed == 0 {
				t.Error("Apply reported no change")
			}
			if err := procs.Verify(pid, s); err != nil {
				t.Fatal(err)
			}
			attr, err := unix.SchedGetAttr(pid, 0)
			if err != nil || PolicyName(attr.Policy) != s.Policy {
				t.Fatalf("kernel says %v (%v)", attr, err)
			}
			if changed, err := procs.Apply(pid, s); err != nil || changed != 0 {
				t.Errorf("second Apply changed %d threads (%v), want 0", changed, err)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	procs := Procs{Root: "/proc"}
	_, err := procs.Apply(1<<30, oci.Sched{Policy: oci.PolicyBatch})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "list threads of pid 1073741824") {
		t.Errorf("missing process: %v; want ENOENT naming the pid", err)
	}
	pid := startChild(t)
	// Nobody may set a DEADLINE runtime longer than its deadline: EINVAL, explained.
	_, err = procs.Apply(pid, oci.Sched{Policy: oci.PolicyDeadline, Deadline: &oci.Deadline{Runtime: 2 * time.Millisecond, Deadline: time.Millisecond, Period: time.Millisecond}})
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("invalid DEADLINE parameters: %v; want EINVAL", err)
	}
	for _, want := range []string{"set SCHED_DEADLINE", fmt.Sprintf("of pid %d", pid), "the kernel refused (EINVAL): invalid parameters"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestPolicyName(t *testing.T) {
	for _, p := range oci.Policies {
		if got := PolicyName(ToAttr(oci.Sched{Policy: p}).Policy); got != p {
			t.Errorf("round trip of %s gave %s", p, got)
		}
	}
	if got := PolicyName(42); got != "SCHED_42" {
		t.Errorf("PolicyName(42) = %s", got)
	}
}
