//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestRuncOptionsForm: the shim works as runtime_type io.containerd.runc.v2 with its binary in
// place of the stock one (containerd's runtime_path), where options arrive as runc options and
// the config comes from $RTSHIM_CONFIG.
func TestRuncOptionsForm(t *testing.T) {
	env.RequireRoot(t)
	pathDir := t.TempDir()
	if err := os.Symlink(filepath.Join(env.BinDir, "containerd-shim-rt-v2"), filepath.Join(pathDir, "containerd-shim-runc-v2")); err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, t.TempDir(), "rtshim.toml", "[defaults]\npriority = 70\n")
	d := env.StartContainerd(t, harness.Options{PathDir: pathDir, Env: []string{"RTSHIM_CONFIG=" + config}})
	before := harness.SnapshotCPUTree(t)
	out := d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Annotations: map[string]string{"rtshim.io/policy": "fifo"},
		Args: []string{"/bin/schedinfo"}})

	if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
		t.Errorf("runc options form: %v, want SCHED_FIFO 70 (priority from $RTSHIM_CONFIG)", s)
	}
	out = d.MustRun(t, harness.RunOpts{Runtime: harness.StockRuntime, Args: []string{"/bin/sh", "-c", "echo plain; exit 0"}})
	if out != "plain\n" {
		t.Errorf("plain container: %q", out)
	}
	d.AssertRestored(t, before)
}

// TestContribContainerdConfig: the runtime entries in contrib/containerd/config.toml are a
// config containerd accepts.
func TestContribContainerdConfig(t *testing.T) {
	env.RequireRoot(t)
	b, err := os.ReadFile("../contrib/containerd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the version line: the generated config has its own.
	body := strings.Replace(string(b), "version = 3\n", "", 1)
	d := startContainerd(t, body)
	if out := d.MustCtr(t, "plugins", "ls"); !strings.Contains(out, "io.containerd.runtime.v2") && !strings.Contains(out, "task") {
		t.Errorf("plugins ls:\n%s", out)
	}
}
