//go:build linux

package vmtest

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/deviceplugin"
	"github.com/rtshim/rtshim/internal/harness"
	"github.com/rtshim/rtshim/internal/sched"
)

// reserve makes a new thread SCHED_DEADLINE with units ms of runtime per second and keeps it
// (asleep: a blocked DEADLINE task uses none of its runtime, but the kernel admitted its
// bandwidth) until release is closed. It returns sched_setattr's error.
func reserve(units int64, release <-chan struct{}) error {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // the policy is the thread's: keep the goroutine on it
		attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_DEADLINE,
			Runtime: uint64(units) * uint64(time.Millisecond), Deadline: uint64(time.Second), Period: uint64(time.Second)}
		err := unix.SchedSetAttr(0, attr, 0)
		errc <- err
		if err != nil {
			runtime.UnlockOSThread()
			return
		}
		<-release
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// TestV2DeadlineBandwidth (issue 12, cgroup v2 nodes): the SCHED_DEADLINE bandwidth the device
// plugin advertises (rtshim.io/dl-bandwidth, ms per second) is where the kernel's own admission
// stops: that many units, in tasks of at most one CPU each, are admitted, and a task of two units
// more is refused with EBUSY (one unit is the figure's rounding). Released, the figure is back.
func TestV2DeadlineBandwidth(t *testing.T) {
	guest(t)
	src := deviceplugin.Deadline{Procs: sched.Procs{Root: "/proc"}, SysRoot: "/sys",
		Cgroups: &cgroupfix.Manager{CPU: cgroupfix.DirFS{Root: harness.CgroupRoot}, V2: true, State: cgroupfix.State{Dir: harness.StateDir}}}
	units, detail, err := src.Units()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("advertised: %d units of rtshim.io/dl-bandwidth (%s)", units, detail)
	if units < 100 {
		t.Fatalf("advertised %d units: a %d-CPU guest should have hundreds", units, runtime.NumCPU())
	}
	release := make(chan struct{})
	defer func() { close(release) }() // the current one: it is replaced below
	left := units
	for left > 0 {
		chunk := min(left, 900) // a DEADLINE task holds at most one CPU
		if err := reserve(chunk, release); err != nil {
			t.Fatalf("the kernel refused %d units with %d of the advertised %d still to go: %v", chunk, left, units, err)
		}
		left -= chunk
	}
	if err := reserve(2, release); !errors.Is(err, unix.EBUSY) {
		t.Errorf("two units beyond the advertised %d: %v, want EBUSY", units, err)
	}
	if now, _, err := src.Units(); err != nil || now > 1 {
		t.Errorf("with all of it reserved the figure is %d (%v), want 0 or 1", now, err)
	}
	close(release)
	release = make(chan struct{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, _, err := src.Units()
		if err == nil && now == units {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the release the figure is %d (%v), want %d back", now, err, units)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
