package cgroupfix

import (
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestResolvePath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"/default/c1", "/default/c1", ""},
		{"/kubepods/burstable/pod1/abc", "/kubepods/burstable/pod1/abc", ""},
		{"//default//c1/", "/default/c1", ""},
		{"kubepods-burstable-pod1.slice:cri-containerd:abc", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope", ""},
		{"system.slice:docker:abc", "/system.slice/docker-abc.scope", ""},
		{":runc:abc", "/system.slice/runc-abc.scope", ""},
		{"", "", "empty"},
		{"/", "", "root cgroup"},
		{"/default/../../etc", "", `"..`},
		{"/a/./b", "", `"."`},
		{"default/c1", "", "must be absolute"},
		{"bad-.slice:p:n", "", "invalid systemd slice"},
		{"a.slice:p:../x", "", "no \"/\""},
		{"/a\x00b", "", "NUL"},
	} {
		got, err := ResolvePath(tc.in)
		if tc.err != "" {
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolvePath(%q): want InvalidArgument containing %q, got %v", tc.in, tc.err, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolvePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAncestors(t *testing.T) {
	if got := Ancestors("/a/b/c"); !reflect.DeepEqual(got, []string{"/a", "/a/b"}) {
		t.Errorf("Ancestors = %v", got)
	}
	if got := Ancestors("/a"); len(got) != 0 {
		t.Errorf("Ancestors(/a) = %v", got)
	}
}

// FuzzResolvePath: whatever a spec holds, the result is an absolute, clean cgroup path that
// cannot climb out of the hierarchy.
func FuzzResolvePath(f *testing.F) {
	for _, s := range []string{"/default/c1", "a.slice:p:n", "/../x", "/a/b/../../..", "-.slice:p:n", ":::", "/\u00e9/\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ResolvePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || got == "/" || strings.Contains(got, "/../") ||
			strings.HasSuffix(got, "/..") || strings.Contains(got, "//") {
			t.Fatalf("ResolvePath(%q) = %q escapes or is not clean", in, got)
		}
	})
}
