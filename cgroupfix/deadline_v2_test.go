package cgroupfix

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"0", []int{0}, false},
		{"0-3,5,7-8\n", []int{0, 1, 2, 3, 5, 7, 8}, false},
		{"3,1,1-2", []int{1, 2, 3}, false},
		{"", nil, false},
		{"a", nil, true},
		{"3-1", nil, true},
		{"-1", nil, true},
		{"0-99999", nil, true},
	} {
		got, err := ParseCPUList(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

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

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3,5", "1", "", ",", "4-2", "0-8191", "9-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseCPUList(in)
		if err != nil {
			return
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("ParseCPUList(%q) = %v: not sorted and distinct", in, got)
		}
	})
}
