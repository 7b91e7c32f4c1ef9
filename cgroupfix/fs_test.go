package cgroupfix

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DirFS reads without os.File; it must still read whole files of any length and keep the
// errno reachable.
func TestDirFSReadFile(t *testing.T) {
	root := t.TempDir()
	fs := DirFS{Root: root}
	if err := os.Mkdir(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"", "950000\n", strings.Repeat("12345\n", 5000)} {
		if err := os.WriteFile(filepath.Join(root, "a", "cgroup.procs"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile("/a", "cgroup.procs")
		if err != nil || got != strings.TrimSpace(content) {
			t.Errorf("ReadFile of %d bytes = %d bytes, %v; want all of them", len(content), len(got), err)
		}
	}
	if _, err := fs.ReadFile("/a", "cpu.rt_runtime_us"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want os.ErrNotExist", err)
	}
	if _, err := fs.ReadFile("/", "a"); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "a")) {
		t.Errorf("ReadFile of a directory: %v, want an error naming it", err)
	}
}
