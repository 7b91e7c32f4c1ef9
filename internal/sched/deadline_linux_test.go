package sched

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadDeadlineBandwidth reads the host (no SCHED_DEADLINE task runs here) and a fake sys
// tree with fair servers, as Linux ≥ 6.8 has them.
func TestReadDeadlineBandwidth(t *testing.T) {
	sys := t.TempDir()
	write := func(rel, v string) {
		p := filepath.Join(sys, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v+"\n"), 0o644)
	}
	write("devices/system/cpu/online", "0-1")
	write("kernel/debug/sched/fair_server/cpu0/runtime", "50000000")
	write("kernel/debug/sched/fair_server/cpu0/period", "1000000000")
	write("kernel/debug/sched/fair_server/cpu1/runtime", "50000000")
	write("kernel/debug/sched/fair_server/cpu1/period", "1000000000")
	b, err := Procs{Root: "/proc"}.ReadDeadlineBandwidth(sys)
	if err != nil {
		t.Fatal(err)
	}
	// sched_rt_runtime_us 950000 of 1000000 on each of 2 CPUs: 996147 each (to_ratio, 20 bits).
	if b.CPUs != 2 || b.Capacity != 2*996147 {
		t.Errorf("capacity %+v, want 2 CPUs of 996147", b)
	}
	// Two fair servers of 50 ms per s: 52428 each.
	if b.Servers != 2*52428 || b.Used < b.Servers {
		t.Errorf("servers %+v, want 2 of 52428", b)
	}
	if want := (2*996147 - b.Used) * 1000 >> 20; b.FreeUnits() != want {
		t.Errorf("free units %d, want %d", b.FreeUnits(), want)
	}
}
