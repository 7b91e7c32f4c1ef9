package cgroupfix

import (
	"strconv"
	"time"

	"github.com/containerd/log"
)

// Cost is what the last Grant or Release spent on what rtshim does not control: the wait for
// the host-wide lock, and the kernel's RT writes. Each write of cpu.rt_runtime_us or
// cpu.rt_period_us makes the kernel check the whole task group tree (tg_rt_schedulable, under
// a global mutex), so that write's time grows with the cgroups on the host, whatever rtshim
// does; what the rest of a grant or release does is the same at any size.
type Cost struct {
	LockWait    time.Duration
	RTWrites    int
	RTWriteTime time.Duration
}

// Cost of the last Grant or Release (the pod quota guard's work is not counted).
func (m *Manager) Cost() Cost { return m.cost }

// LogFields are c as fields of the grant's and release's log lines, at debug level.
func (c Cost) LogFields() log.Fields {
	return log.Fields{"lock_wait": c.LockWait.Round(time.Microsecond),
		"rt_writes": c.RTWrites, "rt_write_time": c.RTWriteTime.Round(time.Microsecond)}
}

// lock takes the host-wide lock, counting the wait.
func (m *Manager) lock() (func(), error) {
	start := time.Now()
	unlock, err := m.State.Lock()
	m.cost.LockWait += time.Since(start)
	return unlock, err
}

// writeRT writes an RT file of cgroup cg, counting the write.
func (m *Manager) writeRT(cg, file string, v int64) error {
	start := time.Now()
	err := m.CPU.WriteFile(cg, file, strconv.FormatInt(v, 10))
	m.cost.RTWrites++
	m.cost.RTWriteTime += time.Since(start)
	return err
}
