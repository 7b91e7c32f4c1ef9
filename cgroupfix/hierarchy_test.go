package cgroupfix

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	const hybrid = `25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
28 25 0:25 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset`
	const unified = `26 25 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate`
	const bind = `27 25 0:24 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
26 25 0:23 / /sys/fs/cgroup\040x rw - cgroup2 cgroup2 rw`
	for _, tc := range []struct {
		in   string
		want Hierarchy
	}{
		{hybrid, Hierarchy{Mount: "/sys/fs/cgroup/cpu,cpuacct"}},
		{unified, Hierarchy{Mount: "/sys/fs/cgroup", V2: true}},
		{bind, Hierarchy{Mount: "/sys/fs/cgroup x", V2: true}},
	} {
		for _, stopAtCPU := range []bool{false, true} {
			mounts, err := parseMountinfo(strings.NewReader(tc.in), stopAtCPU)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cpuHierarchy(mounts)
			if err != nil || got != tc.want {
				t.Errorf("stopAtCPU %v: got %+v, %v; want %+v", stopAtCPU, got, err, tc.want)
			}
		}
	}
	if mounts, _ := parseMountinfo(strings.NewReader("1 2 0:1 / / rw - ext4 /dev/vda rw"), false); len(mounts) != 0 {
		t.Errorf("non-cgroup mount listed: %v", mounts)
	}
	// The lookup stops at the v1 cpu hierarchy: what follows (here a line no parser takes) is
	// not read.
	const after = hybrid + "\nnot a mountinfo line"
	if _, err := parseMountinfo(strings.NewReader(after), false); err == nil {
		t.Error("the whole table: want the bad line's error")
	}
	if mounts, err := parseMountinfo(strings.NewReader(after), true); err != nil || len(mounts) != 2 {
		t.Errorf("up to the cpu hierarchy: got %v, %v; want the cgroup2 and the cpu mounts", mounts, err)
	}
	if _, err := cpuHierarchy(nil); err == nil {
		t.Error("no cgroup mounted must be an error")
	}
}

func TestV2RefusesRT(t *testing.T) {
	for _, tc := range []struct {
		name, config, cmdline string
		want                  bool
	}{
		{"rt group sched on", "CONFIG_RT_GROUP_SCHED=y\n", "quiet", true},
		{"turned off at boot", "CONFIG_RT_GROUP_SCHED=y\n", "quiet rt_group_sched=0", false},
		{"off by default", "CONFIG_RT_GROUP_SCHED=y\nCONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED=y\n", "", false},
		{"off by default, on at boot", "CONFIG_RT_GROUP_SCHED=y\nCONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED=y\n", "rt_group_sched=1", true},
		{"not built", "# CONFIG_RT_GROUP_SCHED is not set\nCONFIG_PREEMPT_RT=y\n", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := t.TempDir()
			var buf bytes.Buffer
			z := gzip.NewWriter(&buf)
			z.Write([]byte("CONFIG_X=y\n" + tc.config))
			z.Close()
			os.WriteFile(filepath.Join(proc, "config.gz"), buf.Bytes(), 0o644)
			os.WriteFile(filepath.Join(proc, "cmdline"), []byte(tc.cmdline), 0o644)
			got, fix := V2RefusesRT(proc, t.TempDir())
			if got != tc.want || (got && !strings.Contains(fix, "rt_group_sched=0")) {
				t.Errorf("V2RefusesRT = %v, %q; want %v", got, fix, tc.want)
			}
		})
	}
	// The config may come from /boot instead.
	proc, boot := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(proc, "sys", "kernel"), 0o755)
	os.WriteFile(filepath.Join(proc, "sys", "kernel", "osrelease"), []byte("6.18.0-test\n"), 0o644)
	os.WriteFile(filepath.Join(boot, "config-6.18.0-test"), []byte("CONFIG_RT_GROUP_SCHED=y\n"), 0o644)
	if got, _ := V2RefusesRT(proc, boot); !got {
		t.Error("config from /boot not read")
	}
}

func TestTickUS(t *testing.T) {
	proc := t.TempDir()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte("CONFIG_FOO=y\nCONFIG_HZ_250=y\nCONFIG_HZ=250\nCONFIG_BAR=1\n"))
	z.Close()
	os.WriteFile(filepath.Join(proc, "config.gz"), b.Bytes(), 0o644)
	if tick, hz := TickUS(proc, t.TempDir()); tick != 4000 || hz != 250 {
		t.Errorf("TickUS = %d, %d; want 4000, 250", tick, hz)
	}
	if tick, hz := TickUS(t.TempDir(), t.TempDir()); tick != 0 || hz != 0 {
		t.Errorf("no config: %d, %d", tick, hz)
	}
}
