package main

import "testing"

func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"-v"}, true}, {[]string{"--v"}, true}, {[]string{"--version"}, true}, {[]string{"-version"}, true},
		{[]string{"-debug", "-v"}, true},
		// What containerd runs: never a version.
		{[]string{"-namespace", "default", "-address", "/run/containerd/containerd.sock", "-publish-binary", "/usr/bin/containerd", "-id", "x", "start"}, false},
		{[]string{"-namespace", "default", "-id", "x", "-bundle", "/b", "delete"}, false},
		{[]string{"--", "-v"}, false},
		{nil, false},
	} {
		if got := versionFlag(tc.args); got != tc.want {
			t.Errorf("versionFlag(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
