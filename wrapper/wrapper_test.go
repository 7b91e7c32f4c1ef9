package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/rtcontainer"
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

// The state dir of a container the config's state dir knows nothing of (no request, or a
// config changed since create) comes from the bundle record in the working directory, where
// containerd's runc shim runs runc, when that record is the container's: then no `runc state`
// is needed. Here runc does not exist, so asking it would fail and give the config's.
func TestStateDirFromOwnBundle(t *testing.T) {
	bundle, root := t.TempDir(), t.TempDir()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	w := Wrapper{Host: rtcontainer.Host{ProcRoot: t.TempDir()}}
	missingRunc := filepath.Join(t.TempDir(), "runc")
	// runc has the container: runcLacks does not hold, stateDir would ask runc.
	if err := os.MkdirAll(filepath.Join(root, "c1"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(bundle)
	inv := Parse([]string{"--root", root, "delete", "c1"})
	ns := namespace(inv)
	writeRec := func(rec string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(bundle, "rtshim.json"), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	older := t.TempDir() // the state dir before a config change
	for _, c := range []struct {
		name, rec, want string
	}{
		{"own record", fmt.Sprintf(`{"namespace":%q,"id":"c1","state_dir":%q}`, ns, older), older},
		{"another container's", fmt.Sprintf(`{"namespace":%q,"id":"c2","state_dir":%q}`, ns, older), cfg.StateDir},
		{"another namespace's", fmt.Sprintf(`{"namespace":"runc:/elsewhere","id":"c1","state_dir":%q}`, older), cfg.StateDir},
		{"without an ID (rtshim 0.1)", fmt.Sprintf(`{"namespace":%q,"state_dir":%q}`, ns, older), cfg.StateDir},
	} {
		writeRec(c.rec)
		if got := w.stateDir(context.Background(), inv, cfg, missingRunc); got != c.want {
			t.Errorf("%s: state dir %q, want %q", c.name, got, c.want)
		}
	}
}
