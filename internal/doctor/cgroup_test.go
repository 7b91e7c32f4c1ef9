package doctor

import "testing"

func TestCgroupVersion(t *testing.T) {
	runFindingCases(t, "cgroup.version", []findingCase{
		{"hybrid", nil, Info, "cgroup hybrid: cpu controller on v1 at @/cgroup/cpu; v1 controllers cpu,memory; cgroup2 at @/cgroup/unified"},
		{"v1", func(f *fakeHost) { f.mountinfo(mountV1CPU, mountV1Mem) }, Info, "cgroup v1: cpu controller at @/cgroup/cpu"},
		{"v2", func(f *fakeHost) { f.mountinfo(mountV2All) }, OK, "cgroup v2 (unified) at @/cgroup/unified"},
		{"named hierarchy is not a controller", func(f *fakeHost) {
			f.mountinfo(mountV2All, "40 31 0:37 / @/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd")
		}, OK, "cgroup v2"},
		{"no cpu controller", func(f *fakeHost) { f.mountinfo(mountV1Mem) }, Fail, "no cgroup cpu controller mounted"},
		{"no mountinfo", func(f *fakeHost) { f.remove("proc/self/mountinfo") }, Fail, "cannot read mountinfo"},
	})
}

func TestCgroupDriver(t *testing.T) {
	systemd := func(f *fakeHost) { f.mkdir("run/systemd/system") }
	rtshimSystemd := func(f *fakeHost) { f.write("etc/containerd/rtshim.toml", "[runc]\nsystemd_cgroup = true\n") }
	runcSystemd := func(f *fakeHost) {
		f.containerdConfig("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n")
	}
	runcForm := func(f *fakeHost) {
		f.write("etc/containerd/config.toml", `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt-runc]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/usr/local/bin/containerd-shim-rt-v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt-runc.options]
    SystemdCgroup = true
`)
	}
	runFindingCases(t, "cgroup.driver", []findingCase{
		{"cgroupfs without systemd", nil, OK, "systemd is not running (no @/run/systemd/system); rt: cgroupfs driver (runc.systemd_cgroup in @/etc/containerd/rtshim.toml)"},
		{"systemd driver without systemd", rtshimSystemd, Fail, "rt: systemd driver"},
		{"cgroupfs under systemd", systemd, Warn, "systemd is running; rt: cgroupfs driver"},
		{"systemd everywhere", func(f *fakeHost) { systemd(f); rtshimSystemd(f); runcSystemd(f) }, OK, "runc: systemd driver"},
		{"rt and runc runtimes disagree", runcSystemd, Warn, "rt: cgroupfs driver (runc.systemd_cgroup in @/etc/containerd/rtshim.toml); runc: systemd driver"},
		{"runc form takes containerd's options", runcForm, Fail, "rt-runc: systemd driver (SystemdCgroup in @/etc/containerd/config.toml)"},
		{"no containerd config: the rtshim config decides", func(f *fakeHost) {
			f.remove("etc/containerd/config.toml")
			rtshimSystemd(f)
		}, Fail, "io.containerd.rt.v2: systemd driver"},
		{"rtshim config broken", func(f *fakeHost) { f.write("etc/containerd/rtshim.toml", "x = 1\n") }, OK, "driver unknown"},
	})
}
