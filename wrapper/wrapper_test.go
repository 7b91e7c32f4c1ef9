package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/oci"
)

func TestRealRuncRefusesItself(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "runc")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvRunc, link)
	if _, err := realRunc(config.Default()); err == nil || !strings.Contains(err.Error(), "runc-rt itself") {
		t.Errorf("want a refusal to call itself, got %v", err)
	}
	t.Setenv(EnvRunc, filepath.Join(dir, "missing"))
	if _, err := realRunc(config.Default()); err == nil || !strings.Contains(err.Error(), EnvRunc) {
		t.Errorf("want a not-found error naming %s, got %v", EnvRunc, err)
	}
	t.Setenv(EnvRunc, "/bin/true")
	if p, err := realRunc(config.Default()); err != nil || p != "/bin/true" {
		t.Errorf("got %q, %v", p, err)
	}
}

func TestRewriteProcess(t *testing.T) {
	p := filepath.Join(t.TempDir(), "process.json")
	proc := specs.Process{Args: []string{"/bin/sh"}, Cwd: "/", Scheduler: &specs.Scheduler{Policy: "SCHED_FIFO", Priority: 80}}
	b, _ := json.Marshal(proc)
	os.WriteFile(p, b, 0o600)
	req := &oci.Request{Sched: oci.Sched{Policy: oci.PolicyFIFO, Priority: 80}, Exec: oci.Sched{Policy: oci.PolicyOther}}
	exec := func(_ context.Context, p *specs.Process) error { oci.ExecProcess(p, req); return nil }
	if err := rewriteProcess(context.Background(), p, exec); err != nil {
		t.Fatal(err)
	}
	var got specs.Process
	b, _ = os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Scheduler == nil || got.Scheduler.Policy != "SCHED_OTHER" || got.Args[0] != "/bin/sh" {
		t.Errorf("exec process after rewrite: %+v", got)
	}
	os.WriteFile(p, []byte("{"), 0o600)
	if err := rewriteProcess(context.Background(), p, exec); err == nil || !strings.Contains(err.Error(), "invalid argument") {
		t.Errorf("corrupt process file: %v", err)
	}
}

func TestFailWritesRuncLog(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		log := filepath.Join(t.TempDir(), "log")
		var stderr bytes.Buffer
		inv := Parse([]string{"--log", log, "--log-format", format, "create", "c1"})
		closeLog := logTo(inv)
		code := (Wrapper{Stderr: &stderr}).fail(os.ErrPermission)
		closeLog()
		if code != 1 {
			t.Errorf("exit %d", code)
		}
		b, _ := os.ReadFile(log)
		if !strings.Contains(stderr.String(), "runc-rt: permission denied") || !strings.Contains(string(b), "permission denied") {
			t.Errorf("%s: stderr %q, log %q", format, stderr.String(), b)
		}
		if format == "json" {
			var m map[string]string
			if err := json.Unmarshal(bytes.TrimSpace(b), &m); err != nil || m["level"] != "error" {
				t.Errorf("json log line %q: %v", b, err)
			}
		}
	}
}

func TestNamespace(t *testing.T) {
	if got := namespace(Parse([]string{"--root", "/run/docker/runtime-runc/moby", "create", "c"})); got != "runc:/run/docker/runtime-runc/moby" {
		t.Errorf("namespace %q", got)
	}
	if got := namespace(Parse([]string{"create", "c"})); got != "runc:/run/runc" {
		t.Errorf("default namespace %q", got)
	}
}

// runcLacks spares `runc state` only where runc keeps no state dir for the container under
// the --root named: without --root runc's default root is runc's to know.
func TestRuncLacks(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "there"), 0o700); err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]bool{
		"--root " + root + " delete --force gone": true,
		"--root " + root + " delete there":        false,
		"delete gone":                             false,
		"--root " + root + " delete ../x":         false,
	} {
		if got := runcLacks(Parse(strings.Fields(args))); got != want {
			t.Errorf("%s: %v, want %v", args, got, want)
		}
	}
}
