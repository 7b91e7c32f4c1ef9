package cgroupfix

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestDeadlineDomainV2(t *testing.T) {
	f := newFakeV2("/pods/p1/c1", "/part/c2")
	f.groups["/"]["cpuset.cpus.effective"] = "0-3"
	f.groups["/part"]["cpuset.cpus.partition"] = "root"
	f.groups["/part"]["cpuset.cpus.effective"] = "2-3"
	f.groups["/pods"]["cpuset.cpus.partition"] = "member"
	m := &Manager{CPU: f, V2: true}
	for _, tc := range []struct {
		leaf, cpus string
		refused    bool
	}{
		{"/pods/p1/c1", "", false},
		{"/pods/p1/c1", "0-3", false},
		{"/pods/p1/c1", "1", true},
		{"/part/c2", "2-3", false},
		{"/part/c2", "3", true},
		{"/new/c3", "0,1,2,3", false},
	} {
		err := m.DeadlineDomainV2(tc.leaf, tc.cpus)
		if tc.refused != (err != nil) {
			t.Errorf("%s cpus %q: %v, want refused %v", tc.leaf, tc.cpus, err, tc.refused)
			continue
		}
		if err != nil && (!errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "cpuset.cpus.partition")) {
			t.Errorf("%s cpus %q: %v", tc.leaf, tc.cpus, err)
		}
	}
	if err := m.DeadlineDomainV2("/pods/p1/c1", "x"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad cpu list: %v", err)
	}
	if err := (&Manager{CPU: f}).DeadlineDomainV2("/pods/p1/c1", "1"); err != nil {
		t.Errorf("cgroup v1: %v", err)
	}
}
