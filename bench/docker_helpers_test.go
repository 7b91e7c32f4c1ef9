//go:build linux

package bench

import (
	"os"
	"slices"
	"testing"
)

func TestDockerHelpers(t *testing.T) {
	got := annotationFlags(map[string]string{"rtshim.io/priority": "80", "rtshim.io/policy": "SCHED_FIFO"})
	want := []string{"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/priority=80"}
	if !slices.Equal(got, want) {
		t.Errorf("annotationFlags = %q, want %q (sorted, so runs are comparable)", got, want)
	}
	if policy, prio, err := procSched(os.Getpid()); err != nil || policy != 0 || prio != 0 {
		t.Errorf("procSched(self) = %d %d %v, want SCHED_OTHER 0 (go test runs SCHED_OTHER)", policy, prio, err)
	}
	for _, k := range dockerKinds(true) {
		if k.rt && k.rtshimKind() == k.self {
			t.Errorf("%s: an rtshim form must not switch itself, and every other RT route must", k.key)
		}
		if k.rt && len(k.flags) == 0 {
			t.Errorf("%s: an RT route without flags asks for nothing", k.key)
		}
	}
}
