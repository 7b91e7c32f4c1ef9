//go:build linux

package harness

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRelease(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		major, minor, patch int
		ok                  bool
	}{
		{"v2.0.14", 2, 0, 14, true},
		{"2.4.2", 2, 4, 2, true},
		{"v2.1.0-rc.1", 2, 1, 0, true},
		{"v2.3.0+dev", 2, 3, 0, true},
		{"v0.1.0", 0, 1, 0, false},
		{"main", 0, 0, 0, false},
	} {
		r, err := ParseRelease(tc.in)
		if (err == nil) != tc.ok || tc.ok && (r.Major != tc.major || r.Minor != tc.minor || r.Patch != tc.patch) {
			t.Errorf("ParseRelease(%q) = %+v, %v", tc.in, r, err)
		}
		if tc.ok && r.String() != tc.in {
			t.Errorf("ParseRelease(%q).String() = %q", tc.in, r)
		}
	}
	r, _ := ParseRelease("v2.3.1")
	if !r.AtLeast(2, 3) || !r.AtLeast(1, 9) || r.AtLeast(2, 4) || r.AtLeast(3, 0) {
		t.Errorf("AtLeast of %v", r)
	}
}

func TestConfigFor(t *testing.T) {
	old, _ := ParseRelease("v2.0.14")
	cfg := configFor("/tmp/d", old, false, false, []string{"[x]\n  y = 1\n"})
	for _, want := range []string{`root = "/tmp/d/root"`, `address = "/tmp/d/containerd.sock"`, `"io.containerd.grpc.v1.cri",`, "[x]\n  y = 1\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "{{dir}}") || strings.Contains(cfg, "socket_dir") {
		t.Errorf("containerd 2.0 config:\n%s", cfg)
	}
	cfg = configFor("/tmp/d", Release{Major: 2, Minor: 4}, true, false, nil)
	if !strings.Contains(cfg, `socket_dir = "/tmp/d/s"`) || strings.Contains(cfg, "cri") || !strings.Contains(cfg, `"io.containerd.nri.v1.nri",`) {
		t.Errorf("containerd 2.4 CRI config:\n%s", cfg)
	}
	cfg = configFor("/tmp/d", Release{Major: 2, Minor: 4}, true, true, nil)
	if strings.Contains(cfg, `"io.containerd.nri.v1.nri",`) || !strings.Contains(cfg, `socket_path = "/tmp/d/nri.sock"`) ||
		!strings.Contains(cfg, `plugin_path = "/tmp/d/nri/plugins"`) {
		t.Errorf("containerd 2.4 CRI and NRI config:\n%s", cfg)
	}
	cfg = configFor("/tmp/d", Release{Major: 1, Minor: 7, Patch: 35}, false, false, nil)
	if !strings.HasPrefix(cfg, "version = 2\n") || strings.Contains(cfg, "io.containerd.cri.v1") || strings.Contains(cfg, "socket_dir") {
		t.Errorf("containerd 1.7 config:\n%s", cfg)
	}
}

func TestWithoutCtrWarnings(t *testing.T) {
	in := "time=\"...\" level=warning msg=\"The support for cgroup v1 is deprecated since containerd v2.2\"\nctr: not found\n"
	if got := withoutCtrWarnings(in); got != "ctr: not found\n" {
		t.Errorf("got %q", got)
	}
}

func TestParseSched(t *testing.T) {
	s, err := ParseSchedOutput("hello\npolicy=SCHED_FIFO priority=80 nice=0 reset_on_fork=0\npolicy=SCHED_OTHER\n")
	if err != nil || s["policy"] != "SCHED_FIFO" || s["priority"] != "80" || s["reset_on_fork"] != "0" {
		t.Errorf("parseSched = %v, %v", s, err)
	}
	if _, err := ParseSchedOutput("set=ok\n"); err == nil {
		t.Error("no policy line: want an error")
	}
	if got := CapEff(t, "policy=SCHED_OTHER\ncapeff=0000000000800000\n"); got != 1<<CapSysNice {
		t.Errorf("CapEff = %#x", got)
	}
}

func TestDiffCPUTree(t *testing.T) {
	before := map[string]string{"a": "0", "b": "100", "c": "-1"}
	after := map[string]string{"a": "0", "b": "200", "d": "5"}
	want := []string{"b: 100 -> 200", "c: -1 -> <none>", "d: <none> -> 5"}
	if got := DiffCPUTree(before, after); !slices.Equal(got, want) {
		t.Errorf("DiffCPUTree = %q, want %q", got, want)
	}
	if got := DiffCPUTree(before, before); len(got) != 0 {
		t.Errorf("DiffCPUTree of equal snapshots = %q", got)
	}
}
