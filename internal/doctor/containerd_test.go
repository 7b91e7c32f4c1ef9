package doctor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestContainerdRuntime(t *testing.T) {
	const v2Table = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.realtime]
  runtime_type = "io.containerd.rt.v2"
  pod_annotations = ["rtshim.io/*"]
  container_annotations = ["rtshim.io/policy", "rtshim.io/priority"]
`
	runFindingCases(t, "containerd.runtime", []findingCase{
		{"configured", nil, OK, "rt runtimes: rt (runtime_type io.containerd.rt.v2) in @/etc/containerd/config.toml; rtshim.io/ annotations pass"},
		{"version 2 config", func(f *fakeHost) { f.write("etc/containerd/config.toml", v2Table) }, OK, "realtime (runtime_type io.containerd.rt.v2)"},
		{"runtime_path form", func(f *fakeHost) {
			f.write("etc/containerd/config.toml", `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.x]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/opt/rt/containerd-shim-rt-v2"
  pod_annotations = ["*"]
  container_annotations = ["rtshim.io/*"]
`)
		}, Warn, `x (runtime_type io.containerd.runc.v2, runtime_path /opt/rt/containerd-shim-rt-v2) in @/etc/containerd/config.toml; rtshim.io/ annotations are dropped by CRI for plugins."io.containerd.cri.v1.runtime".containerd.runtimes.x`},
		{"no annotation filters", func(f *fakeHost) {
			f.write("etc/containerd/config.toml", "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt]\nruntime_type = \"io.containerd.rt.v2\"\n")
		}, Warn, "annotations are dropped by CRI"},
		{"imported file", func(f *fakeHost) {
			f.write("etc/containerd/config.toml", "version = 2\nimports = [\"conf.d/*.toml\"]\n")
			f.write("etc/containerd/conf.d/rt.toml", v2Table)
		}, OK, "realtime (runtime_type io.containerd.rt.v2) in @/etc/containerd/conf.d/rt.toml"},
		{"no rt runtime", func(f *fakeHost) {
			f.write("etc/containerd/config.toml", "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n")
		}, Info, "no runtime with runtime_type io.containerd.rt.v2 or a runtime_path ending in containerd-shim-rt-v2 in @/etc/containerd/config.toml"},
		{"no config file", func(f *fakeHost) { f.remove("etc/containerd/config.toml") }, Info, ": no containerd config file (@/etc/containerd/config.toml)"},
		{"malformed", func(f *fakeHost) { f.write("etc/containerd/config.toml", "[plugins\nx = 1\n") }, Fail, "cannot read containerd config: @/etc/containerd/config.toml:"},
		{"named file missing", func(f *fakeHost) { f.h.ContainerdConfigs = []string{f.path("nope.toml")} }, Fail, "@/nope.toml: stat @/nope.toml: no such file"},
		{"named file adds a runtime", func(f *fakeHost) {
			f.remove("etc/containerd/config.toml")
			f.write("private/config.toml", v2Table)
			f.h.ContainerdConfigs = []string{f.path("private/config.toml")}
		}, OK, "realtime (runtime_type io.containerd.rt.v2) in @/private/config.toml"},
	})
}

// TestContribContainerdConfig keeps contrib/containerd/config.toml recognised: both of its
// forms are rt runtimes that let rtshim's annotations through.
func TestContribContainerdConfig(t *testing.T) {
	f := newFakeHost(t)
	contrib, err := filepath.Abs("../../contrib/containerd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	f.h.ContainerdConfigs = []string{contrib}
	got := finding(t, Run(f.h), "containerd.runtime")
	if got.Severity != OK {
		t.Fatalf("contrib config: %+v", got)
	}
	e := load(f.h)
	var names []string
	for _, r := range e.runtimes {
		if r.isRT() {
			names = append(names, r.Name)
		}
	}
	if len(names) != 2 || names[0] != "rt" || names[1] != "rt-runc" {
		t.Errorf("rt runtimes in contrib config: %v, want [rt rt-runc]", names)
	}
}

func TestShimBinary(t *testing.T) {
	// runningContainerd makes pid 99 a containerd whose binary is at rel.
	runningContainerd := func(f *fakeHost, rel string) {
		f.executable(rel)
		f.write("proc/99/comm", "containerd\n")
		if err := os.Symlink(f.path(rel), f.path("proc/99/exe")); err != nil {
			t.Fatal(err)
		}
	}
	runtimePath := func(p string) func(*fakeHost) {
		return func(f *fakeHost) {
			f.write("etc/containerd/config.toml", "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt]\n"+
				"runtime_type = \"io.containerd.runc.v2\"\nruntime_path = \""+f.path(p)+"\"\n")
		}
	}
	runFindingCases(t, "shim.binary", []findingCase{
		{"on PATH", nil, OK, "containerd: not running; on PATH at @/usr/bin/containerd; io.containerd.rt.v2 resolves to @/usr/bin/containerd-shim-rt-v2 (on PATH)"},
		{"next to the running containerd", func(f *fakeHost) {
			runningContainerd(f, "opt/ctrd/bin/containerd")
			f.executable("opt/ctrd/bin/" + shimBinary)
			f.remove("usr/bin/" + shimBinary)
		}, OK, "containerd pid 99 (@/opt/ctrd/bin/containerd, config @/etc/containerd/config.toml, socket @/run/containerd/containerd.sock), " +
			"environment unreadable: this shell's PATH stands in; io.containerd.rt.v2 resolves to @/opt/ctrd/bin/containerd-shim-rt-v2 (next to containerd)"},
		{"on the running containerd's PATH", func(f *fakeHost) {
			runningContainerd(f, "opt/ctrd/bin/containerd")
			f.write("proc/99/environ", "HOME=/\x00PATH="+f.path("opt/shims")+"\x00")
			f.executable("opt/shims/" + shimBinary)
		}, OK, "resolves to @/opt/shims/containerd-shim-rt-v2 (on containerd's PATH)"},
		{"not on the running containerd's PATH", func(f *fakeHost) {
			runningContainerd(f, "opt/ctrd/bin/containerd")
			f.write("proc/99/environ", "PATH=/nowhere\x00")
		}, Fail, "containerd-shim-rt-v2 is neither on containerd's PATH (/nowhere) nor next to containerd"},
		{"missing", func(f *fakeHost) { f.remove("usr/bin/" + shimBinary) }, Fail, "containerd-shim-rt-v2 is neither on PATH (@/usr/bin) nor next to containerd"},
		{"not executable", func(f *fakeHost) { os.Chmod(f.path("usr/bin/"+shimBinary), 0o644) }, Fail, "is neither on PATH"},
		{"runtime_path missing", runtimePath("opt/missing/" + shimBinary), Fail, "runtime rt: runtime_path @/opt/missing/containerd-shim-rt-v2 is missing"},
		{"runtime_path executable", func(f *fakeHost) {
			f.executable("opt/rt/" + shimBinary)
			runtimePath("opt/rt/" + shimBinary)(f)
			f.remove("usr/bin/" + shimBinary) // a runtime_path is not looked up: PATH does not matter
		}, OK, "runtime rt: runtime_path @/opt/rt/containerd-shim-rt-v2 is executable"},
		{"runtime_path not executable", func(f *fakeHost) {
			f.write("opt/rt/"+shimBinary, "")
			runtimePath("opt/rt/" + shimBinary)(f)
		}, Fail, "is not executable (chmod 755 it)"},
	})
}

// FuzzContainerdConfig: any containerd config, however odd its tables, yields findings and
// never a panic (runtimes tables that are not tables, options that are not TOML-encodable).
func FuzzContainerdConfig(f *testing.F) {
	f.Add("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt]\nruntime_type = \"io.containerd.rt.v2\"\n" +
		"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.rt.options]\nx = [1, {a = 2}]\n")
	f.Add("runtimes = 5\n[a.runtimes]\nb = 1\n[c.runtimes.d]\nruntime_path = 7\npod_annotations = [1, \"[\"]\n")
	f.Add("imports = [\"*\", 3]\n")
	f.Fuzz(func(t *testing.T, config string) {
		h := newFakeHost(t)
		h.write("etc/containerd/config.toml", config)
		r := Run(h.h)
		if len(r.Findings) != len(checks) {
			t.Fatalf("%d findings", len(r.Findings))
		}
	})
}
