package shim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefuseOldDaemon: containerd 1.x (whose module is github.com/containerd/containerd) is
// refused with the fix; a 2.x daemon, or one whose build info cannot be read, is not.
func TestRefuseOldDaemon(t *testing.T) {
	dir := t.TempDir()
	build := func(module, name string) string {
		src := filepath.Join(dir, name)
		os.MkdirAll(filepath.Join(src, "cmd", "containerd"), 0o755)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+module+"\n\ngo 1.22\n"), 0o644)
		os.WriteFile(filepath.Join(src, "cmd", "containerd", "main.go"), []byte("package main\nfunc main() {}\n"), 0o644)
		out := filepath.Join(dir, name+".bin")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/containerd")
		cmd.Dir, cmd.Env = src, append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", module, err, b)
		}
		return out
	}
	v1, v2 := build("github.com/containerd/containerd", "v1"), build("github.com/containerd/containerd/v2", "v2")
	err := refuseOldDaemon([]string{"-namespace", "moby", "-publish-binary", v1, "-id", "x", "start"})
	if err == nil || !strings.Contains(err.Error(), "is containerd 1.x") || !strings.Contains(err.Error(), "runc-rt") {
		t.Errorf("containerd 1.x: %v", err)
	}
	for _, args := range [][]string{{"-publish-binary=" + v2, "start"}, {"--publish-binary", filepath.Join(dir, "none"), "start"}, {"start"}} {
		if err := refuseOldDaemon(args); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}
