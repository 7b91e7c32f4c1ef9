package deviceplugin

import (
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/sched"
)

// TestDeadlineUnits: on this host (no SCHED_DEADLINE task, no fair servers in debugfs) the
// figure is every CPU's share of the global RT limit.
func TestDeadlineUnits(t *testing.T) {
	s := Deadline{Procs: sched.Procs{Root: "/proc"}, SysRoot: "/sys", Cgroups: &cgroupfix.Manager{
		CPU: cgroupfix.DirFS{Root: t.TempDir()}, State: cgroupfix.State{Dir: t.TempDir()}}}
	b, err := s.Procs.ReadDeadlineBandwidth("/sys")
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := s.Units()
	if err != nil {
		t.Fatal(err)
	}
	if want := b.Free() * 1000 >> 20; n != want || n < 1 {
		t.Errorf("units %d, want %d", n, want)
	}
	if s.Max() != b.CPUs*1000 {
		t.Errorf("max %d for %d CPUs", s.Max(), b.CPUs)
	}
	if err := s.Check(1001); err == nil {
		t.Error("more than one CPU allocated to a container")
	}
}
