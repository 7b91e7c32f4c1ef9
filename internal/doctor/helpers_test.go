package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost is a fake /proc, /sys, /etc, /run and PATH in a temp dir. goodHost fills it so
// that every finding is ok; each test then breaks one thing.
type fakeHost struct {
	t    *testing.T
	root string
	h    Host
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	root := t.TempDir()
	f := &fakeHost{t: t, root: root, h: Host{
		ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: filepath.Join(root, "etc"), RunRoot: filepath.Join(root, "run"),
		BootDir: filepath.Join(root, "boot"), PATH: filepath.Join(root, "usr/bin"),
	}}
	for _, d := range []string{"proc/self", "sys", "etc", "run", "boot", "usr/bin"} {
		f.mkdir(d)
	}
	return f
}

// path is rel below the fake root.
func (f *fakeHost) path(rel string) string { return filepath.Join(f.root, rel) }

func (f *fakeHost) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) write(rel, content string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(rel))
	if err := os.WriteFile(f.path(rel), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) remove(rel string) {
	f.t.Helper()
	if err := os.RemoveAll(f.path(rel)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeHost) executable(rel string) {
	f.t.Helper()
	f.write(rel, "#!/bin/sh\n")
	if err := os.Chmod(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// containerdBinary makes rel an executable that answers --version as containerd version v does.
func (f *fakeHost) containerdBinary(rel, v string) {
	f.t.Helper()
	f.write(rel, "#!/bin/sh\necho containerd github.com/containerd/containerd/v2 "+v+" 0123abcd\n")
	if err := os.Chmod(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// mountinfo writes mountinfo lines; "@" in them stands for the fake root, so mount points
// point into the fake tree as they would on a host.
func (f *fakeHost) mountinfo(lines ...string) {
	f.write("proc/self/mountinfo", strings.ReplaceAll(strings.Join(lines, "\n"), "@", f.root)+"\n")
}

const (
	mountV1CPU = "32 31 0:29 / @/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu"
	mountV1Mem = "35 31 0:32 / @/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
	mountV2    = "41 31 0:38 / @/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"
	mountV2All = "26 25 0:23 / @/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate"
)

// rtBudget writes a v1 cgroup's RT budget below the fake cpu hierarchy.
func (f *fakeHost) rtBudget(cgroup string, runtime, period string) {
	f.write(filepath.Join("cgroup/cpu", cgroup, "cpu.rt_runtime_us"), runtime+"\n")
	f.write(filepath.Join("cgroup/cpu", cgroup, "cpu.rt_period_us"), period+"\n")
}

// containerdConfig is contrib/containerd/config.toml's form 1 with its ConfigPath in the tree.
func (f *fakeHost) containerdConfig(extra string) {
	f.write("etc/containerd/config.toml", `version = 3
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt]
  runtime_type = "io.containerd.rt.v2"
  pod_annotations = ["rtshim.io/*"]
  container_annotations = ["rtshim.io/*"]
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.rt.options]
    ConfigPath = "`+f.path("etc/containerd/rtshim.toml")+`"
`+extra)
}

func goodHost(t *testing.T) *fakeHost {
	f := newFakeHost(t)
	f.mountinfo(mountV1CPU, mountV1Mem, mountV2)
	f.rtBudget("", "950000", "1000000")
	f.rtBudget("system", "0", "1000000")
	f.write("proc/sys/kernel/sched_rt_runtime_us", "950000\n")
	f.write("proc/sys/kernel/sched_rt_period_us", "1000000\n")
	f.write("proc/sys/kernel/version", "#1 SMP PREEMPT_RT Debian 6.12.57-1\n")
	f.write("sys/kernel/realtime", "1\n")
	f.write("proc/cmdline", "root=/dev/sda1 isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1 quiet\n")
	f.write("sys/devices/system/cpu/online", "0-1\n")
	for _, cpu := range []string{"cpu0", "cpu1"} {
		dir := "sys/devices/system/cpu/" + cpu
		f.write(dir+"/cpufreq/scaling_governor", "performance\n")
		idle(f, dir+"/cpuidle/state0", "POLL", "0", "0")
		idle(f, dir+"/cpuidle/state1", "C1", "2", "0")
		idle(f, dir+"/cpuidle/state2", "C6", "133", "1")
	}
	f.write("proc/1/comm", "init\n")
	f.containerdConfig("")
	f.write("etc/containerd/rtshim.toml", "state_dir = \""+f.path("run/rtshim")+"\"\n[defaults]\npriority = 60\n")
	f.containerdBinary("usr/bin/containerd", "v2.4.2")
	f.executable("usr/bin/" + shimBinary)
	return f
}

func idle(f *fakeHost, dir, name, latency, disable string) {
	f.write(dir+"/name", name+"\n")
	f.write(dir+"/latency", latency+"\n")
	f.write(dir+"/disable", disable+"\n")
}

func finding(t *testing.T, r Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s in %+v", id, r.Findings)
	return Finding{}
}

// findingCase is one row of a per-finding table: a change to the good host and what the
// finding must then say.
type findingCase struct {
	name  string
	setup func(*fakeHost)
	want  Severity
	saw   string // substring of Saw
}

func runFindingCases(t *testing.T, id string, cases []findingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := goodHost(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			got := finding(t, Run(f.h), id)
			if got.Severity != tc.want || !strings.Contains(got.Saw, strings.ReplaceAll(tc.saw, "@", f.root)) {
				t.Errorf("%s: got %s %q\nwant %s with %q", id, got.Severity, got.Saw, tc.want, tc.saw)
			}
			if got.Why == "" || got.Title == "" {
				t.Errorf("%s: every finding says why it matters and has a title: %+v", id, got)
			}
			if (got.Severity == Warn || got.Severity == Fail) && got.Fix == "" {
				t.Errorf("%s: a %s finding must say how to fix it: %+v", id, got.Severity, got)
			}
		})
	}
}
