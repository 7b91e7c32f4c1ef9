package doctor

import (
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
)

func TestOrphans(t *testing.T) {
	runFindingCases(t, "rtshim.orphans", []findingCase{
		{"no claims", nil, OK, "0 claims in @/run/rtshim, none orphaned"},
		{"orphan", func(f *fakeHost) {
			if err := (cgroupfix.State{Dir: f.path("run/rtshim")}).SaveClaim(&cgroupfix.Claim{Namespace: "default", ID: "orph",
				Leaf: "/default/orph", RuntimeUS: 40000, PeriodUS: 1000000, Owner: cgroupfix.Owner{PID: 999999, StartTime: 5}}); err != nil {
				f.t.Fatal(err)
			}
			f.write("cgroup/cpu/default/orph/cgroup.procs", "77\n")
		}, Warn, "default/orph (cgroup /default/orph, 1 processes, shim pid 999999 gone)"},
	})
}
