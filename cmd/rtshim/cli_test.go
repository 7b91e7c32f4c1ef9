package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/doctor"
	"github.com/rtshim/rtshim/internal/status"
	"github.com/rtshim/rtshim/internal/version"
)

// readyHost is the smallest fake host doctor calls ready: a cgroup v2 mount, the shim on PATH
// and an rtshim config whose state_dir is in the tree, not the host's /run/rtshim (everything
// it cannot read is info, not a failure).
func readyHost(t *testing.T) (doctor.Host, string) {
	t.Helper()
	root := t.TempDir()
	h := doctor.Host{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: filepath.Join(root, "etc"), RunRoot: filepath.Join(root, "run"), BootDir: filepath.Join(root, "boot"),
		PATH: filepath.Join(root, "bin")}
	write(t, filepath.Join(h.ProcRoot, "self", "mountinfo"), "26 25 0:23 / "+filepath.Join(root, "cgroup")+" rw - cgroup2 cgroup2 rw\n")
	write(t, filepath.Join(h.EtcRoot, "containerd", "rtshim.toml"), "state_dir = \""+filepath.Join(root, "run", "rtshim")+"\"\n")
	write(t, filepath.Join(h.PATH, "containerd-shim-rt-v2"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(h.PATH, "containerd-shim-rt-v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	return h, root
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runApp(h doctor.Host, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	a := &app{stdout: &o, stderr: &e, host: h,
		sched:   func(int) (status.Sched, error) { return status.Sched{Policy: "SCHED_FIFO", Priority: 42}, nil },
		version: version.Info{Version: "0.1.0+3.gabcdef1", Commit: "abcdef1234", Containerd: "v2.2.9", Go: "go1.26.8"}}
	code = a.run(args)
	return code, o.String(), e.String()
}

// readyFindings is what doctor reports on readyHost, in order: every check, each with the
// severity the fake host earns (it lacks most of /proc and /sys: info, never a failure).
var readyFindings = []string{
	"cgroup.version=ok", "cgroup.driver=ok", "rt.group-sched=info", "rt.throttling=info", "kernel.preempt-rt=warn",
	"cpu.isolation=info", "irq.balance=ok", "cpu.governor=info", "cpu.cstates=info", "cpu.tuning=info", "containerd.version=info",
	"containerd.runtime=info", "shim.binary=ok", "shim.config=ok", "rtshim.orphans=ok",
}

type jsonReport struct {
	Ready    bool
	Counts   map[string]int
	Findings []struct{ ID, Severity, Saw, Fix string }
}

// doctorJSON runs doctor --json with args and returns the exit status and the report.
func doctorJSON(t *testing.T, h doctor.Host, args ...string) (int, jsonReport) {
	t.Helper()
	code, out, errOut := runApp(h, append([]string{"doctor", "--json"}, args...)...)
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json %q: %v\n%s%s", args, err, out, errOut)
	}
	return code, r
}

// with is readyFindings with some findings' severities replaced ("id=severity").
func with(changes ...string) []string {
	out := append([]string{}, readyFindings...)
	for _, c := range changes {
		id, _, _ := strings.Cut(c, "=")
		for i, f := range out {
			if strings.HasPrefix(f, id+"=") {
				out[i] = c
			}
		}
	}
	return out
}

// checkFindings compares the report's findings (IDs, order, severities) and counts with want,
// and its exit status and readiness with what they imply; it returns the findings by ID.
func checkFindings(t *testing.T, name string, code int, r jsonReport, want []string) map[string]struct{ Saw, Fix string } {
	t.Helper()
	var got []string
	byID := map[string]struct{ Saw, Fix string }{}
	counts := map[string]int{"ok": 0, "info": 0, "warn": 0, "fail": 0}
	for _, f := range r.Findings {
		got = append(got, f.ID+"="+f.Severity)
		byID[f.ID] = struct{ Saw, Fix string }{f.Saw, f.Fix}
	}
	for _, w := range want {
		_, sev, _ := strings.Cut(w, "=")
		counts[sev]++
	}
	ready := counts["fail"] == 0
	wantCode := exitOK
	if !ready {
		wantCode = exitNotReady
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: findings\n  %s\nwant\n  %s", name, strings.Join(got, " "), strings.Join(want, " "))
	}
	if code != wantCode || r.Ready != ready || fmt.Sprint(r.Counts) != fmt.Sprint(counts) {
		t.Errorf("%s: exit %d, ready %v, counts %v; want %d, %v, %v", name, code, r.Ready, r.Counts, wantCode, ready, counts)
	}
	return byID
}

func TestDoctorExitStatus(t *testing.T) {
	h, root := readyHost(t)
	code, out, errOut := runApp(h, "doctor")
	if code != exitOK || !strings.HasPrefix(out, "rtshim doctor: READY for real-time containers (0 fail, 1 warn, 8 info, 6 ok)\n") ||
		!strings.Contains(out, "\n[WARN] kernel.preempt-rt: ") || strings.Contains(out, "[FAIL]") {
		t.Fatalf("ready host: exit %d\n%s%s", code, out, errOut)
	}
	code, r := doctorJSON(t, h)
	checkFindings(t, "ready host", code, r, readyFindings)

	// Not ready: a bad rtshim config named with --config; only shim.config changes.
	bad := filepath.Join(root, "bad.toml")
	write(t, bad, "[limits]\nmax_priority = 100\n")
	code, r = doctorJSON(t, h, "--config", bad)
	if f := checkFindings(t, "bad --config", code, r, with("shim.config=fail")); !strings.Contains(f["shim.config"].Saw, bad) ||
		!strings.Contains(f["shim.config"].Saw, "max_priority") || f["shim.config"].Fix == "" {
		t.Errorf("bad --config: shim.config %+v", f["shim.config"])
	}
	if code, out, _ := runApp(h, "doctor", "--config", bad); code != exitNotReady ||
		!strings.HasPrefix(out, "rtshim doctor: NOT READY") || !strings.Contains(out, "\n[FAIL] shim.config: rtshim config\n") {
		t.Errorf("bad --config, text: exit %d\n%s", code, out)
	}

	// --containerd-config is repeatable and must exist: containerd.runtime names both files.
	a, b := filepath.Join(root, "a.toml"), filepath.Join(root, "b.toml")
	code, r = doctorJSON(t, h, "--containerd-config", a, "--containerd-config", b)
	if f := checkFindings(t, "missing containerd configs", code, r, with("containerd.runtime=fail")); !strings.Contains(f["containerd.runtime"].Saw, a+": stat") ||
		!strings.Contains(f["containerd.runtime"].Saw, b+": stat") {
		t.Errorf("missing containerd configs: containerd.runtime %+v", f["containerd.runtime"])
	}

	// --address naming a socket nothing serves: containerd.version fails with the fix.
	sock := filepath.Join(root, "nope.sock")
	code, r = doctorJSON(t, h, "--address", sock)
	if f := checkFindings(t, "--address", code, r, with("containerd.version=fail")); !strings.Contains(f["containerd.version"].Saw, "containerd at "+sock) ||
		!strings.Contains(f["containerd.version"].Fix, "--address") {
		t.Errorf("--address: containerd.version %+v", f["containerd.version"])
	}

	for _, args := range [][]string{{"doctor", "--nope"}, {"doctor", "extra"}, {"doctor", "--address"}, {"bogus"}, {}} {
		if code, _, errOut := runApp(h, args...); code != exitUsage || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want %d with a message", args, code, errOut, exitUsage)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	h, root := readyHost(t)
	state := filepath.Join(root, "state")
	if err := (cgroupfix.State{Dir: state}).SaveClaim(&cgroupfix.Claim{Namespace: "default", ID: "rt1", Leaf: "/rt1"}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "cgroup", "rt1", "cgroup.procs"), "12\n")

	code, out, errOut := runApp(h, "status", "--state-dir", state)
	if code != exitOK || !strings.Contains(out, "rt1") || !strings.Contains(out, "SCHED_FIFO/42") {
		t.Fatalf("status --state-dir: exit %d\n%s%s", code, out, errOut)
	}
	// The state dir comes from the rtshim config by default.
	write(t, filepath.Join(h.EtcRoot, "containerd", "rtshim.toml"), "state_dir = \""+state+"\"\n")
	code, out, _ = runApp(h, "status", "--json")
	var r status.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || r.StateDir != state || len(r.Containers) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	// A --state-dir that does not exist is an error (exit 1), a config's state_dir that does
	// not exist yet is nothing to list (exit 0).
	missing := filepath.Join(root, "nonexistent")
	if code, out, errOut := runApp(h, "status", "--state-dir", missing); code != exitNotReady || out != "" ||
		!strings.Contains(errOut, "rtshim status: state dir "+missing+" does not exist") {
		t.Errorf("status --state-dir %s: exit %d, stdout %q, stderr %q", missing, code, out, errOut)
	}
	write(t, filepath.Join(h.EtcRoot, "containerd", "rtshim.toml"), "state_dir = \""+missing+"\"\n")
	if code, out, errOut := runApp(h, "status"); code != exitOK || !strings.Contains(out, missing+" does not exist yet") {
		t.Errorf("status with a config state_dir not made yet: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A bad config is an error that points at --state-dir.
	write(t, filepath.Join(h.EtcRoot, "containerd", "rtshim.toml"), "state_dir = 5\n")
	if code, _, errOut := runApp(h, "status"); code != exitNotReady || !strings.Contains(errOut, "--state-dir") {
		t.Errorf("bad config: exit %d, %q", code, errOut)
	}
}

func TestHelp(t *testing.T) {
	h, _ := readyHost(t)
	code, page, _ := runApp(h, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"} {
		if !strings.Contains(page, "\n"+section+"\n") && !strings.HasPrefix(page, section+"\n") {
			t.Errorf("help page lacks section %s", section)
		}
	}
	for i, line := range strings.Split(page, "\n") {
		if len([]rune(line)) > 100 {
			t.Errorf("help line %d longer than 100 columns: %q", i+1, line)
		}
	}
	for _, tc := range []struct {
		args []string
		cmd  string
	}{
		{[]string{"help", "doctor"}, "doctor"}, {[]string{"doctor", "--help"}, "doctor"},
		{[]string{"status", "-h"}, "status"}, {[]string{"help", "status"}, "status"},
	} {
		code, out, _ := runApp(h, tc.args...)
		if code != exitOK || !strings.HasPrefix(out, "Usage: rtshim "+tc.cmd+" [options]") || !strings.Contains(out, "EXIT STATUS") {
			t.Errorf("%q: exit %d\n%s", tc.args, code, out)
		}
	}
	if code, _, _ := runApp(h, "help", "nope"); code != exitUsage {
		t.Errorf("help nope: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	h, _ := readyHost(t)
	const want = "rtshim version 0.1.0+3.gabcdef1\ncommit: abcdef1234\ncontainerd: v2.2.9\ngo: go1.26.8\n"
	for _, arg := range []string{"--version", "-v", "version"} {
		if code, out, errOut := runApp(h, arg); code != exitOK || out != want || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and %q", arg, code, out, errOut, want)
		}
	}
	if code, _, errOut := runApp(h, "--version", "x"); code != exitUsage || !strings.Contains(errOut, `unexpected argument "x"`) {
		t.Errorf("--version x: exit %d, %q", code, errOut)
	}
}

// TestReapCommand: reap takes the shared flags (--address among them) besides its own, and
// names what it cannot find.
func TestReapCommand(t *testing.T) {
	h, root := readyHost(t)
	state := filepath.Join(root, "state")
	if code, out, _ := runApp(h, "reap", "--help"); code != exitOK || !strings.HasPrefix(out, "Usage: rtshim reap") {
		t.Errorf("reap --help: exit %d\n%s", code, out)
	}
	code, _, errOut := runApp(h, "reap", "default", "x", "--address", filepath.Join(root, "c.sock"), "--state-dir", state)
	if code != exitNotReady || !strings.Contains(errOut, "no claim of default/x in "+state) {
		t.Errorf("reap of nothing: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runApp(h, "reap", "default"); code != exitUsage || !strings.Contains(errOut, "usage: rtshim reap NAMESPACE ID") {
		t.Errorf("reap with one argument: exit %d, stderr %q", code, errOut)
	}
	if got := reapAddress(""); got != "/run/containerd/containerd.sock" {
		t.Errorf("reap's default socket: %q", got)
	}
}
