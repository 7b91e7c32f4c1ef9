package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuild(t *testing.T) {
	deps := []*debug.Module{
		{Path: "github.com/containerd/log", Version: "v0.1.0"},
		{Path: ContainerdModule, Version: "v2.2.9"},
	}
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string
		want            Info
	}{
		{"stamped", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Deps: deps, Settings: vcs},
			"0.1.0+3.gabcdef1", "abcdef1234", Info{"0.1.0+3.gabcdef1", "abcdef1234", "v2.2.9", "go1.26.8"}},
		{"plain go build in a checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.1-0.20260101000000-0123456789ab+dirty"}, Deps: deps, Settings: vcs},
			"", "", Info{"0.1.1-0.20260101000000-0123456789ab+dirty", "0123456789abcdef-dirty", "v2.2.9", "go1.26.8"}},
		{"go install at a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}, Deps: deps},
			"", "", Info{"0.1.0", "unknown", "v2.2.9", "go1.26.8"}},
		{"no vcs, no tag, no containerd", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"", "", Info{"unknown", "unknown", "unknown", "go1.26.8"}},
		{"replaced containerd", &debug.BuildInfo{GoVersion: "go1.26.8", Deps: []*debug.Module{{Path: ContainerdModule, Version: "v2.2.9",
			Replace: &debug.Module{Path: "../containerd", Version: ""}}}},
			"1.0.0", "c", Info{"1.0.0", "c", "v2.2.9 (replaced by ../containerd )", "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuild(tc.bi, tc.version, tc.commit); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestForms(t *testing.T) {
	i := Info{"0.1.0", "abc", "v2.2.9", "go1.26.8"}
	if got, want := i.Line("runc-rt"), "runc-rt version 0.1.0 (rtshim), commit abc, containerd v2.2.9, go1.26.8"; got != want {
		t.Errorf("Line: %q, want %q", got, want)
	}
	if got, want := i.Text("rtshim"), "rtshim version 0.1.0\ncommit: abc\ncontainerd: v2.2.9\ngo: go1.26.8\n"; got != want {
		t.Errorf("Text: %q, want %q", got, want)
	}
	// The shim keeps the lines of containerd's shim library (pkg/shim prints them for -v).
	want := "containerd-shim-rt-v2:\n  Version:  0.1.0\n  Revision: abc\n  Go version: go1.26.8\n"
	if got := i.Shim("containerd-shim-rt-v2"); !strings.HasPrefix(got, want) || !strings.Contains(got, "\n  containerd: v2.2.9\n") {
		t.Errorf("Shim: %q, want it to start with %q and name containerd v2.2.9", got, want)
	}
}
