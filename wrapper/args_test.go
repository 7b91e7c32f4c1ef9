package wrapper

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		global  map[string]string
		command string
		flags   map[string]string
		pos     []string
	}{
		{[]string{"--root", "/run/docker/runtime-runc/moby", "--log", "/x/log.json", "--log-format", "json", "--systemd-cgroup",
			"create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"},
			map[string]string{"root": "/run/docker/runtime-runc/moby", "log": "/x/log.json", "log-format": "json", "systemd-cgroup": "true"},
			"create", map[string]string{"bundle": "/b", "pid-file": "/b/init.pid"}, []string{"c1"}},
		{[]string{"--root=/r", "create", "c1", "-b", "/b"}, map[string]string{"root": "/r"},
			"create", map[string]string{"bundle": "/b"}, []string{"c1"}},
		{[]string{"exec", "--process", "/tmp/p.json", "--detach", "c1"}, map[string]string{},
			"exec", map[string]string{"process": "/tmp/p.json", "detach": "true"}, []string{"c1"}},
		{[]string{"exec", "-t", "c1", "sh", "-c", "ls -l"}, map[string]string{},
			"exec", map[string]string{"tty": "true"}, []string{"c1", "sh", "-c", "ls -l"}},
		{[]string{"delete", "--force", "c1"}, map[string]string{}, "delete", map[string]string{"force": "true"}, []string{"c1"}},
		{[]string{"--version"}, map[string]string{"version": "true"}, "", map[string]string{}, nil},
		{[]string{"kill", "c1", "KILL"}, map[string]string{}, "kill", map[string]string{}, []string{"c1", "KILL"}},
		// containerd 1.7's runc shim (go-runc 1.0), and 2.x's (go-runc 1.1 and later).
		{[]string{"--root", "/r", "update", "--resources", "-", "c1"}, map[string]string{"root": "/r"},
			"update", map[string]string{"resources": "-"}, []string{"c1"}},
		{[]string{"update", "--resources=-", "c1"}, map[string]string{}, "update", map[string]string{"resources": "-"}, []string{"c1"}},
		{[]string{"update", "-r", "/tmp/r.json", "--cpu-quota", "20000", "c1"}, map[string]string{},
			"update", map[string]string{"resources": "/tmp/r.json", "cpu-quota": "20000"}, []string{"c1"}},
		// update's value flags, space-separated (CRI-O's `update --resources - ID`, a user's --cpu-quota).
		{[]string{"update", "--resources", "-", "c1"}, map[string]string{}, "update", map[string]string{"resources": "-"}, []string{"c1"}},
		{[]string{"update", "-r", "/tmp/r.json", "c1"}, map[string]string{}, "update", map[string]string{"resources": "/tmp/r.json"}, []string{"c1"}},
		{[]string{"update", "--cpu-quota", "20000", "--cpu-rt-runtime", "5000", "--memory", "1M", "c1"}, map[string]string{}, "update",
			map[string]string{"cpu-quota": "20000", "cpu-rt-runtime": "5000", "memory": "1M"}, []string{"c1"}},
	} {
		inv := Parse(tc.args)
		if !reflect.DeepEqual(inv.Global, tc.global) || inv.Command != tc.command ||
			!reflect.DeepEqual(inv.Flags, tc.flags) || !reflect.DeepEqual(inv.Pos, tc.pos) {
			t.Errorf("Parse(%q) = %+v", tc.args, inv)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("--root\x00/r\x00create\x00--bundle\x00/b\x00c1")
	f.Add("exec\x00-p\x00x\x00c1\x00--\x00sh")
	f.Fuzz(func(t *testing.T, s string) {
		Parse(splitNUL(s)) // must not panic
	})
}

func splitNUL(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
