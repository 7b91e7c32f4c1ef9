package doctor

import (
	"os"
	"strings"
	"testing"
)

const runcForm = `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt-runc]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/usr/local/bin/containerd-shim-rt-v2"
`

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestShimConfig(t *testing.T) {
	options := func(body string) func(*fakeHost) {
		return func(f *fakeHost) {
			f.write("etc/containerd/config.toml", "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt]\n"+
				"runtime_type = \"io.containerd.rt.v2\"\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt.options]\n"+body)
		}
	}
	runFindingCases(t, "shim.config", []findingCase{
		{"ConfigPath", nil, OK, "@/etc/containerd/rtshim.toml (used by runtime rt): valid; state_dir @/run/rtshim, defaults priority 60"},
		{"bad key", func(f *fakeHost) { f.write("etc/containerd/rtshim.toml", "[limits]\nmax_prio = 5\n") }, Fail,
			"@/etc/containerd/rtshim.toml: unknown key limits.max_prio"},
		{"bad value", func(f *fakeHost) { f.write("etc/containerd/rtshim.toml", "[defaults]\npriority = 0\n") }, Fail, "defaults.priority=0"},
		{"ConfigPath missing", func(f *fakeHost) { f.remove("etc/containerd/rtshim.toml") }, Fail, "config file @/etc/containerd/rtshim.toml"},
		{"no file: defaults", func(f *fakeHost) {
			f.remove("etc/containerd/config.toml")
			f.remove("etc/containerd/rtshim.toml")
		}, OK, "@/etc/containerd/rtshim.toml: valid, no file: built-in defaults; state_dir /run/rtshim, defaults priority 50"},
		{"options as ConfigBody", options("state_dir = \"/run/rt2\"\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt.options.defaults]\npriority = 70\n"),
			OK, "options of runtime rt in @/etc/containerd/config.toml (used by runtime rt): valid; state_dir /run/rt2, defaults priority 70"},
		{"runc options in an rt.v2 runtime", options("SystemdCgroup = true\n"), Fail, "unknown key SystemdCgroup"},
		{"RTSHIM_CONFIG of containerd", func(f *fakeHost) {
			f.remove("etc/containerd/config.toml")
			f.write("proc/99/comm", "containerd\n")
			f.write("proc/99/environ", "PATH=/bin\x00RTSHIM_CONFIG="+f.path("opt/rt.toml")+"\x00")
			f.write("opt/rt.toml", "[defaults]\npriority = 80\n")
		}, OK, "@/opt/rt.toml ($RTSHIM_CONFIG of containerd pid 99): valid; state_dir /run/rtshim, defaults priority 80"},
		{"--config", func(f *fakeHost) {
			f.write("other.toml", "state_dir = \"/run/other\"\n")
			f.h.ShimConfig = f.path("other.toml")
		}, OK, "@/other.toml: valid; state_dir /run/other"},
		{"--config missing", func(f *fakeHost) { f.h.ShimConfig = f.path("nope.toml") }, Fail, "config file @/nope.toml"},
		{"ConfigPath is the default file: one source", func(f *fakeHost) {
			f.containerdConfig(runcForm)
		}, OK, "@/etc/containerd/rtshim.toml (used by runtime rt, rt-runc): valid"},
		{"state dirs differ", func(f *fakeHost) {
			f.containerdConfig(runcForm)
			f.write("etc/containerd/rtshim.toml", "state_dir = \"/run/a\"\n")
			f.write("etc/containerd/config.toml", strings.ReplaceAll(readFile(t, f.path("etc/containerd/config.toml")),
				f.path("etc/containerd/rtshim.toml"), f.path("opt/b.toml")))
			f.write("opt/b.toml", "state_dir = \"/run/b\"\n")
		}, Warn, "state_dir /run/b"},
	})
}

// TestShimConfigForStatus: rtshim status takes its state dir from the same config doctor
// checks first.
func TestShimConfigForStatus(t *testing.T) {
	f := goodHost(t)
	f.write("etc/containerd/rtshim.toml", "state_dir = \"/run/elsewhere\"\n")
	cfg, err := ShimConfig(f.h)
	if err != nil || cfg.StateDir != "/run/elsewhere" {
		t.Fatalf("ShimConfig: %+v, %v", cfg, err)
	}
	f.write("etc/containerd/rtshim.toml", "state_dir = \"relative\"\n")
	if _, err := ShimConfig(f.h); err == nil || !strings.Contains(err.Error(), "state_dir") {
		t.Fatalf("a bad config must be an error naming the key, got %v", err)
	}
}
