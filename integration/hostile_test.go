//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// hostileCase is one bad input: annotations, environment, a config file or a cgroups path.
type hostileCase struct {
	name   string
	ann    map[string]string
	env    []string
	config string // body of the config file; "" for none
	path   string // config path to use instead (unreadable, missing)
	cgroup string // linux.cgroupsPath (ctr --cgroup)
	want   []string
}

func fifoWith(kv ...string) map[string]string {
	m := map[string]string{"rtshim.io/policy": "fifo"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var hostileCases = []hostileCase{
	// Annotations: out of range, overflow, garbage, empty, unicode, huge, conflicting.
	{name: "priority 0", ann: fifoWith("rtshim.io/priority", "0"), want: []string{`rtshim.io/priority="0"`, "1 to 99"}},
	{name: "priority 100", ann: fifoWith("rtshim.io/priority", "100"), want: []string{`rtshim.io/priority="100"`}},
	{name: "priority -1", ann: fifoWith("rtshim.io/priority", "-1"), want: []string{`rtshim.io/priority="-1"`}},
	{name: "priority overflow", ann: fifoWith("rtshim.io/priority", "99999999999999999999"), want: []string{`"99999999999999999999"`}},
	{name: "priority float", ann: fifoWith("rtshim.io/priority", "5.5"), want: []string{`"5.5"`}},
	{name: "priority empty", ann: fifoWith("rtshim.io/priority", ""), want: []string{`rtshim.io/priority=""`}},
	{name: "priority hex", ann: fifoWith("rtshim.io/priority", "0x10"), want: []string{`"0x10"`}},
	{name: "policy empty", ann: map[string]string{"rtshim.io/policy": ""}, want: []string{`rtshim.io/policy=""`}},
	{name: "policy garbage", ann: map[string]string{"rtshim.io/policy": "SCHED_FOO"}, want: []string{`"SCHED_FOO"`, "SCHED_FIFO"}},
	{name: "policy fullwidth", ann: map[string]string{"rtshim.io/policy": "ＦＩＦＯ"}, want: []string{"rtshim.io/policy"}},
	{name: "policy dotless i", ann: map[string]string{"rtshim.io/policy": "fıfo"}, want: []string{"rtshim.io/policy"}},
	{name: "policy huge", ann: map[string]string{"rtshim.io/policy": strings.Repeat("x", 60000)}, want: []string{"rtshim.io/policy", "xxxx"}},
	{name: "policy number", ann: map[string]string{"rtshim.io/policy": "1"}, want: []string{`rtshim.io/policy="1"`}},
	{name: "nice -21", ann: map[string]string{"rtshim.io/policy": "batch", "rtshim.io/nice": "-21"}, want: []string{`rtshim.io/nice="-21"`}},
	{name: "nice 20", ann: map[string]string{"rtshim.io/policy": "other", "rtshim.io/nice": "20"}, want: []string{`rtshim.io/nice="20"`}},
	{name: "nice with fifo", ann: fifoWith("rtshim.io/nice", "5"), want: []string{"rtshim.io/nice"}},
	{name: "priority with other", ann: map[string]string{"rtshim.io/policy": "other", "rtshim.io/priority": "10"}, want: []string{"rtshim.io/priority"}},
	{name: "priority without policy", ann: map[string]string{"rtshim.io/priority": "10"}, want: []string{"rtshim.io/priority", "rtshim.io/policy"}},
	{name: "deadline incomplete", ann: map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=1ms"}, want: []string{"rtshim.io/deadline"}},
	{name: "deadline runtime over deadline", ann: map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "runtime=2ms,deadline=1ms,period=2ms"}, want: []string{"rtshim.io/deadline"}},
	{name: "deadline garbage", ann: map[string]string{"rtshim.io/policy": "deadline", "rtshim.io/deadline": "a=b"}, want: []string{`rtshim.io/deadline="a=b"`}},
	{name: "deadline with fifo", ann: fifoWith("rtshim.io/deadline", "runtime=1ms,deadline=2ms,period=2ms"), want: []string{"rtshim.io/deadline"}},
	{name: "deadline without parameters", ann: map[string]string{"rtshim.io/policy": "deadline"}, want: []string{"rtshim.io/deadline"}},
	{name: "reset-on-fork yes", ann: fifoWith("rtshim.io/reset-on-fork", "yes"), want: []string{`rtshim.io/reset-on-fork="yes"`}},
	{name: "mode force", ann: fifoWith("rtshim.io/mode", "force"), want: []string{`rtshim.io/mode="force"`, "apply", "grant"}},
	{name: "budget 0", ann: fifoWith("rtshim.io/rt-runtime-us", "0"), want: []string{`rtshim.io/rt-runtime-us="0"`}},
	{name: "budget negative", ann: fifoWith("rtshim.io/rt-runtime-us", "-5"), want: []string{`rtshim.io/rt-runtime-us="-5"`}},
	{name: "budget over period", ann: fifoWith("rtshim.io/rt-runtime-us", "1000001"), want: []string{`"1000001"`}},
	{name: "budget exponent", ann: fifoWith("rtshim.io/rt-runtime-us", "1e5"), want: []string{`"1e5"`}},
	{name: "budget overflow", ann: fifoWith("rtshim.io/rt-runtime-us", "18446744073709551616"), want: []string{`"18446744073709551616"`}},
	{name: "cpu-quota off", ann: fifoWith("rtshim.io/cpu-quota", "off"), want: []string{`rtshim.io/cpu-quota="off"`, "disable", "keep"}},
	{name: "exec-policy deadline", ann: fifoWith("rtshim.io/exec-policy", "SCHED_DEADLINE"), want: []string{"rtshim.io/exec-policy"}},
	{name: "exec-policy garbage", ann: fifoWith("rtshim.io/exec-policy", "bogus"), want: []string{`rtshim.io/exec-policy="bogus"`}},
	{name: "unknown key", ann: map[string]string{"rtshim.io/polcy": "fifo"}, want: []string{"rtshim.io/polcy", "valid keys"}},
	{name: "unknown key in override", ann: map[string]string{"rtshim.io/polcy.container.x": "fifo"}, want: []string{"rtshim.io/polcy.container.x"}},
	{name: "override for a container that does not exist", ann: map[string]string{"rtshim.io/priority.container.ghost": "10"},
		want: []string{"rtshim.io/priority.container.ghost", "ghost"}},
	{name: "env priority out of range", env: []string{"RTSHIM_POLICY=fifo", "RTSHIM_PRIORITY=500"}, want: []string{`RTSHIM_PRIORITY="500"`}},
	{name: "env policy garbage", env: []string{"RTSHIM_POLICY=nope"}, want: []string{`RTSHIM_POLICY="nope"`}},
	// Config files.
	{name: "config unknown key", ann: fifoWith(), config: "[limits]\nmax_priorty = 60\n", want: []string{"max_priorty"}},
	{name: "config wrong type", ann: fifoWith(), config: "[defaults]\npriority = \"fifty\"\n", want: []string{"priority"}},
	{name: "config syntax", ann: fifoWith(), config: "[defaults\n", want: []string{"rtshim.toml"}},
	{name: "config bad value", ann: fifoWith(), config: "[limits]\nmax_priority = 0\n", want: []string{"limits.max_priority"}},
	{name: "config relative state dir", ann: fifoWith(), config: "state_dir = \"run/rtshim\"\n", want: []string{"state_dir"}},
	{name: "config unreadable (a directory)", ann: fifoWith(), path: "/", want: []string{`"/"`}},
	{name: "config missing", ann: fifoWith(), path: "/nonexistent/rtshim.toml", want: []string{"/nonexistent/rtshim.toml"}},
	// Specs: cgroup paths that leave the hierarchy or do not fit the cgroup driver.
	{name: "cgroupsPath with ..", ann: fifoWith(), cgroup: "/a/../../etc", want: []string{"linux.cgroupsPath", `".."`}},
	{name: "cgroupsPath relative", ann: fifoWith(), cgroup: "rel/path", want: []string{"linux.cgroupsPath", "absolute"}},
	{name: "cgroupsPath systemd style", ann: fifoWith(), cgroup: "system.slice:rtshim:x", want: []string{"linux.cgroupsPath", "cgroupfs driver"}},
	{name: "cgroupsPath root", ann: fifoWith(), cgroup: "/", want: []string{"linux.cgroupsPath", "root cgroup"}},
}

// TestHostileInput: every bad input fails Create with an error that names what is wrong and
// changes nothing on the host.
func TestHostileInput(t *testing.T) {
	env.RequireRoot(t)
	d := startContainerd(t)
	cfgDir := t.TempDir()
	before := harness.SnapshotCPUTree(t)
	cgroupsBefore := cgroupSet(t)
	for i, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("hostile-%d", i)
			args := []string{"run", "--runtime", harness.RTRuntime}
			config := tc.path
			if tc.config != "" {
				config = writeFile(t, cfgDir, "rtshim.toml", tc.config)
			}
			if config != "" {
				args = append(args, "--runtime-config-path", config)
			}
			for k, v := range tc.ann {
				args = append(args, "--annotation", k+"="+v)
			}
			for _, e := range tc.env {
				args = append(args, "--env", e)
			}
			if tc.cgroup != "" {
				args = append(args, "--cgroup", tc.cgroup)
			}
			_, stderr, err := d.Ctr(t, append(args, "--rm", "--rootfs", env.Rootfs, id, "/bin/schedinfo")...)
			if err == nil {
				t.Fatal("the container ran")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error does not say %q:\n%s", w, truncateForLog(stderr))
				}
			}
			if !strings.Contains(stderr, "invalid argument") && !strings.Contains(stderr, "not found") &&
				!strings.Contains(stderr, "failed precondition") {
				t.Errorf("error is not classified (invalid argument, not found, failed precondition):\n%s", truncateForLog(stderr))
			}
			d.Ctr(t, "containers", "delete", id)
		})
	}
	d.AssertRestored(t, before)
	if diff := cgroupSetDiff(cgroupsBefore, cgroupSet(t)); len(diff) > 0 {
		t.Errorf("cgroups changed: %v", diff)
	}
}

func truncateForLog(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// cgroupSet is every cgroup directory under the cpu hierarchy, other test daemons' aside.
func cgroupSet(t testing.TB) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	root := harness.CPUV1("/")
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		set[rel] = true
		return nil
	})
	return set
}

// cgroupSetDiff lists cgroups added or removed, ignoring test namespaces' leaf cgroups that
// other concurrent test binaries create.
func cgroupSetDiff(before, after map[string]bool) []string {
	var diff []string
	for p := range after {
		if !before[p] && !(strings.HasPrefix(p, harness.TempPrefix) && strings.Count(p, "/") <= 1) {
			diff = append(diff, "+"+p)
		}
	}
	for p := range before {
		if !after[p] && !strings.HasPrefix(p, harness.TempPrefix) {
			diff = append(diff, "-"+p)
		}
	}
	return diff
}
