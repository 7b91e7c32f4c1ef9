package cgroupfix

import (
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestResolvePath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"system.slice:docker:abc", "", "cgroupfs driver"},
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
		{"default/c1", "", "must be an absolute path"},
		{"bad-.slice:p:n", "", "invalid systemd slice"},
		{"a.slice:p:../x", "", "no \"/\""},
		{"/a\x00b", "", "NUL"},
	} {
		systemd := strings.Contains(tc.in, ":") && !strings.Contains(tc.err, "cgroupfs driver")
		got, err := ResolvePath(tc.in, systemd)
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

func TestResolvePathDriverMismatch(t *testing.T) {
	if _, err := ResolvePath("/default/c1", true); err == nil || !strings.Contains(err.Error(), "systemd cgroup driver") {
		t.Errorf("cgroupfs path with the systemd driver: %v", err)
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
		got, err := ResolvePath(in, strings.Contains(in, ":"))
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || got == "/" || strings.Contains(got, "/../") ||
			strings.HasSuffix(got, "/..") || strings.Contains(got, "//") {
			t.Fatalf("ResolvePath(%q) = %q escapes or is not clean", in, got)
		}
	})
}
