// Package sched reads and sets the scheduling policy of every thread of a process with
// sched_getattr/sched_setattr. A policy belongs to a thread, not a process, and the thread of
// a paused runc init that will call execve is not known in advance: so all of them are set.
package sched

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/oci"
)

var policyNumbers = map[oci.Policy]uint32{
	oci.PolicyOther:    unix.SCHED_NORMAL,
	oci.PolicyFIFO:     unix.SCHED_FIFO,
	oci.PolicyRR:       unix.SCHED_RR,
	oci.PolicyBatch:    unix.SCHED_BATCH,
	oci.PolicyIdle:     unix.SCHED_IDLE,
	oci.PolicyDeadline: unix.SCHED_DEADLINE,
}

// PolicyName is the sched(7) name of a kernel policy number.
func PolicyName(n uint32) oci.Policy {
	for name, num := range policyNumbers {
		if num == n {
			return name
		}
	}
	return oci.Policy("SCHED_" + strconv.FormatUint(uint64(n), 10))
}

// ToAttr converts a requested setting into the kernel's sched_attr.
func ToAttr(s oci.Sched) *unix.SchedAttr {
	a := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policyNumbers[s.Policy]}
	switch s.Policy {
	case oci.PolicyFIFO, oci.PolicyRR:
		a.Priority = uint32(s.Priority)
	case oci.PolicyOther, oci.PolicyBatch:
		a.Nice = int32(s.Nice)
	case oci.PolicyDeadline:
		if d := s.Deadline; d != nil {
			a.Runtime, a.Deadline, a.Period = uint64(d.Runtime), uint64(d.Deadline), uint64(d.Period)
		}
	}
	if s.ResetOnFork {
		a.Flags |= unix.SCHED_FLAG_RESET_ON_FORK
	}
	return a
}

// Matches reports whether a thread's attributes are what s asks for. Only the fields that
// mean something for the policy are compared (a FIFO thread keeps whatever nice it had).
func Matches(a *unix.SchedAttr, s oci.Sched) bool {
	want := ToAttr(s)
	if a.Policy != want.Policy || a.Flags&unix.SCHED_FLAG_RESET_ON_FORK != want.Flags {
		return false
	}
	switch s.Policy {
	case oci.PolicyFIFO, oci.PolicyRR:
		return a.Priority == want.Priority
	case oci.PolicyOther, oci.PolicyBatch:
		return a.Nice == want.Nice
	case oci.PolicyDeadline:
		return a.Runtime == want.Runtime && a.Deadline == want.Deadline && a.Period == want.Period
	}
	return true
}

// Describe formats attributes the way error messages and tests show them.
func Describe(a *unix.SchedAttr) string {
	return fmt.Sprintf("%s priority=%d nice=%d reset_on_fork=%t", PolicyName(a.Policy), a.Priority, a.Nice,
		a.Flags&unix.SCHED_FLAG_RESET_ON_FORK != 0)
}

// Procs reads and sets thread policies below a procfs root ("/proc" on a host).
type Procs struct{ Root string }

// Threads lists the thread IDs of pid.
func (p Procs) Threads(pid int) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(p.Root, strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// Apply sets s on every thread of pid that must run it (see targets) and does not have it yet,
// and verifies the result. It
// returns how many threads it had to change: zero when the runtime already applied the policy.
// New threads may appear while it works, so it repeats until a pass changes nothing.
func (p Procs) Apply(pid int, s oci.Sched) (changed int, err error) {
	for pass := 0; pass < 5; pass++ {
		n, err := p.applyOnce(pid, s)
		changed += n
		if err != nil || n == 0 {
			return changed, err
		}
	}
	return changed, p.Verify(pid, s)
}

// targets are the threads of pid that must run s. SCHED_DEADLINE goes on the main thread
// alone: every thread given it is admitted with the full bandwidth (a paused runc init has
// half a dozen, so a one-CPU root domain would have to admit six times the request, and refuse
// it), and the main thread is the one that calls execve (runc init locks its Go main goroutine
// to the initial thread before anything runs), whose program then has it alone. Other policies
// go on every thread: which one runs on is cheap, and threads can come and go meanwhile.
func (p Procs) targets(pid int, s oci.Sched) ([]int, error) {
	if s.Policy == oci.PolicyDeadline {
		return []int{pid}, nil
	}
	return p.Threads(pid)
}

func (p Procs) applyOnce(pid int, s oci.Sched) (changed int, err error) {
	tids, err := p.targets(pid, s)
	if err != nil {
		return 0, err
	}
	want := ToAttr(s)
	for _, tid := range tids {
		got, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return changed, fmt.Errorf("read policy of thread %d of pid %d: %w", tid, pid, err)
		}
		if Matches(got, s) {
			continue
		}
		if err := unix.SchedSetAttr(tid, want, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return changed, setError(pid, tid, s, err)
		}
		changed++
	}
	return changed, nil
}

// Verify checks every thread of pid that must run s (see targets) has it.
func (p Procs) Verify(pid int, s oci.Sched) error {
	tids, err := p.targets(pid, s)
	if err != nil {
		return err
	}
	for _, tid := range tids {
		got, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read policy of thread %d of pid %d: %w", tid, pid, err)
		}
		if !Matches(got, s) {
			return fmt.Errorf("thread %d of pid %d runs %s, want %s", tid, pid, Describe(got), Describe(ToAttr(s)))
		}
	}
	return nil
}

// setError turns the kernel's terse errno into a sentence that says what to do.
func setError(pid, tid int, s oci.Sched, err error) error {
	var why string
	switch {
	case errors.Is(err, unix.EPERM):
		why = "the kernel refused (EPERM): the cgroup has no RT budget (cpu.rt_runtime_us is 0) or the shim lacks CAP_SYS_NICE"
	case errors.Is(err, unix.EBUSY) && s.Policy == oci.PolicyDeadline:
		why = "the kernel refused (EBUSY): not enough SCHED_DEADLINE bandwidth left in the root domain"
	case errors.Is(err, unix.EINVAL):
		why = "the kernel refused (EINVAL): invalid parameters, or a DEADLINE task whose CPU affinity does not span its root domain"
	default:
		why = err.Error()
	}
	return fmt.Errorf("set %s on thread %d of pid %d: %s: %w", Describe(ToAttr(s)), tid, pid, why, err)
}

// Demote sets every real-time thread of pid (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE) to
// SCHED_OTHER and returns how many it changed. A throttled real-time thread whose budget is
// tiny can wait for minutes before it runs again, even to die of SIGKILL; as SCHED_OTHER it
// runs, and dies, at once. Threads that exit meanwhile are skipped.
func (p Procs) Demote(pid int) (changed int, err error) {
	tids, err := p.Threads(pid)
	if err != nil {
		return 0, err
	}
	other := ToAttr(oci.Sched{Policy: oci.PolicyOther})
	var errs []error
	for _, tid := range tids {
		got, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // gone, or not ours to read: nothing to demote
		}
		if got.Policy != unix.SCHED_FIFO && got.Policy != unix.SCHED_RR && got.Policy != unix.SCHED_DEADLINE {
			continue
		}
		if err := unix.SchedSetAttr(tid, other, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("demote thread %d of pid %d: %w", tid, pid, err))
			continue
		}
		changed++
	}
	return changed, errors.Join(errs...)
}
