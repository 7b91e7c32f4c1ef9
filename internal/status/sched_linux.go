package status

import (
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/sched"
)

// schedGetAttr reads the policy of a process's main thread. The shim sets every thread; the
// main thread stands for the process here, as it does in ps and chrt -p.
func schedGetAttr(pid int) (Sched, error) {
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		return Sched{}, err
	}
	return Sched{Policy: string(sched.PolicyName(a.Policy)), Priority: int(a.Priority), Nice: int(a.Nice),
		RuntimeNS: a.Runtime, DeadlineNS: a.Deadline, PeriodNS: a.Period}, nil
}
