package sched

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/cpulist"
)

// The kernel's SCHED_DEADLINE admission (kernel/sched/deadline.c, __dl_overflow) compares, per
// root domain, the bandwidth of its admitted tasks (and, since Linux 6.8, of its per-CPU
// deadline servers) with the root domain's capacity times the global RT share
// (sched_rt_runtime_us / sched_rt_period_us), in 20-bit fixed point (BW_SHIFT).
const (
	bwShift = 20
	bwUnit  = int64(1) << bwShift
)

func toRatio(period, runtime uint64) int64 {
	if period == 0 {
		return 0
	}
	return int64((runtime << bwShift) / period)
}

// DeadlineBandwidth is the default root domain's SCHED_DEADLINE bandwidth, in CPUs with 20
// fraction bits (1<<20 is one CPU): Capacity is what the kernel admits in all, Used what its
// admitted tasks and deadline servers hold. Free = Capacity - Used is where sched_setattr starts
// failing with EBUSY.
type DeadlineBandwidth struct {
	CPUs     int
	Capacity int64
	Used     int64
	Servers  int64 // part of Used: the per-CPU fair servers (Linux ≥ 6.8)
}

// Free is what a new SCHED_DEADLINE task may take.
func (b DeadlineBandwidth) Free() int64 { return max(b.Capacity-b.Used, 0) }

// FreeUnits is Free in ms of runtime per second (1000 units are one CPU).
func (b DeadlineBandwidth) FreeUnits() int64 { return b.Free() * 1000 / bwUnit }

// ReadDeadlineBandwidth reads it below procRoot and sysRoot: the online CPUs, the global RT
// share, every thread's policy (sched_getattr) and the fair servers' parameters from debugfs
// (sysRoot/kernel/debug/sched/fair_server) when the kernel has them. Partitioned cpusets (root
// domains of their own) are not counted apart: on such a host the figure is the whole
// machine's.
func (p Procs) ReadDeadlineBandwidth(sysRoot string) (DeadlineBandwidth, error) {
	var b DeadlineBandwidth
	online, err := os.ReadFile(filepath.Join(sysRoot, "devices", "system", "cpu", "online"))
	if err != nil {
		return b, err
	}
	cpus, err := cpulist.Parse(string(online))
	if err != nil {
		return b, err
	}
	b.CPUs = len(cpus)
	rt, err1 := readInt(filepath.Join(p.Root, "sys", "kernel", "sched_rt_runtime_us"))
	period, err2 := readInt(filepath.Join(p.Root, "sys", "kernel", "sched_rt_period_us"))
	if err := errors.Join(err1, err2); err != nil {
		return b, fmt.Errorf("read the global RT share: %w", err)
	}
	if period <= 0 {
		return b, fmt.Errorf("read the global RT share: sched_rt_period_us = %d", period)
	}
	global := bwUnit // sched_rt_runtime_us = -1: no limit
	if rt >= 0 {
		global = toRatio(uint64(period), uint64(rt))
	}
	b.Capacity = global * int64(b.CPUs)
	b.Servers = fairServers(sysRoot)
	b.Used = b.Servers
	tasks, _ := filepath.Glob(filepath.Join(p.Root, "[0-9]*", "task", "[0-9]*"))
	for _, t := range tasks {
		tid, err := strconv.Atoi(filepath.Base(t))
		if err != nil {
			continue
		}
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil || a.Policy != unix.SCHED_DEADLINE {
			continue
		}
		b.Used += toRatio(a.Period, a.Runtime)
	}
	return b, nil
}

// fairServers is the bandwidth of the per-CPU fair deadline servers, as debugfs shows them
// (runtime and period in ns per CPU); 0 on kernels without them or without debugfs.
func fairServers(sysRoot string) int64 {
	dirs, _ := filepath.Glob(filepath.Join(sysRoot, "kernel", "debug", "sched", "fair_server", "cpu[0-9]*"))
	var sum int64
	for _, d := range dirs {
		rt, err1 := readInt(filepath.Join(d, "runtime"))
		period, err2 := readInt(filepath.Join(d, "period"))
		if err1 == nil && err2 == nil && rt > 0 && period > 0 {
			sum += toRatio(uint64(period), uint64(rt))
		}
	}
	return sum
}

func readInt(p string) (int64, error) {
	return cgroupfix.ReadInt(cgroupfix.DirFS{Root: filepath.Dir(p)}, "/", filepath.Base(p))
}
