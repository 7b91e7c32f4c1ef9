package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/doctor"
	"github.com/rtshim/rtshim/internal/status"
)

// readyHost is the smallest fake host doctor calls ready: a cgroup v2 mount and the shim on
// PATH (everything it cannot read is info, not a failure).
func readyHost(t *testing.T) (doctor.Host, string) {
	t.Helper()
	root := t.TempDir()
	h := doctor.Host{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		EtcRoot: filepath.Join(root, "etc"), RunRoot: filepath.Join(root, "run"), BootDir: filepath.Join(root, "boot"),
		PATH: filepath.Join(root, "bin")}
	write(t, filepath.Join(h.ProcRoot, "self", "mountinfo"), "26 25 0:23 / "+filepath.Join(root, "cgroup")+" rw - cgroup2 cgroup2 rw\n")
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
		sched: func(int) (status.Sched, error) { return status.Sched{Policy: "SCHED_FIFO", Priority: 42}, nil }}
	code = a.run(args)
	return code, o.String(), e.String()
}

func TestDoctorExitStatus(t *testing.T) {
	h, root := readyHost(t)
	if code, out, errOut := runApp(h, "doctor"); code != exitOK || !strings.HasPrefix(out, "rtshim doctor: READY") {
		t.Fatalf("ready host: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ := runApp(h, "doctor", "--json")
	var r struct {
		Ready    bool
		Findings []struct{ ID, Severity string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || !r.Ready || len(r.Findings) != 13 {
		t.Fatalf("--json on a ready host: exit %d, %v, %s", code, err, out)
	}
	// Not ready: a bad rtshim config named with --config.
	write(t, filepath.Join(root, "bad.toml"), "[limits]\nmax_priority = 100\n")
	code, out, _ = runApp(h, "doctor", "--json", "--config", filepath.Join(root, "bad.toml"))
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitNotReady || r.Ready {
		t.Fatalf("bad config: exit %d, %v, %s", code, err, out)
	}
	// --containerd-config is repeatable and must exist.
	code, out, _ = runApp(h, "doctor", "--containerd-config", filepath.Join(root, "a.toml"), "--containerd-config", filepath.Join(root, "b.toml"))
	if code != exitNotReady || !strings.Contains(out, "a.toml: stat") || !strings.Contains(out, "b.toml: stat") {
		t.Errorf("missing containerd configs: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"doctor", "--nope"}, {"doctor", "extra"}, {"bogus"}, {}} {
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
