// Package cgroupfix does the cgroup work real-time containers need and runc does not do:
// RT budgets granted up the cgroup v1 tree and given back, and the CFS quota exemption. Every
// access to cgroupfs goes through FS, rooted at a hierarchy's mount point, so the logic runs
// against fake trees in tests.
package cgroupfix

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FS is one cgroup hierarchy. Paths are cgroup paths relative to the hierarchy's root, in the
// form "/a/b" ("/" is the root cgroup).
type FS interface {
	ReadFile(cgroup, file string) (string, error)
	WriteFile(cgroup, file, value string) error
	Mkdir(cgroup string) error
	Rmdir(cgroup string) error
	// Children lists the names of the child cgroups.
	Children(cgroup string) ([]string, error)
	Exists(cgroup string) bool
}

// DirFS is a real cgroup hierarchy mounted at Root.
type DirFS struct{ Root string }

func (d DirFS) path(cgroup string, file ...string) string {
	return filepath.Join(append([]string{d.Root, cgroup}, file...)...)
}

func (d DirFS) ReadFile(cgroup, file string) (string, error) {
	b, err := os.ReadFile(d.path(cgroup, file))
	return strings.TrimSpace(string(b)), err
}

// WriteFile writes without O_TRUNC or O_CREATE, as cgroupfs expects, and keeps the kernel's
// errno reachable with errors.Is.
func (d DirFS) WriteFile(cgroup, file, value string) error {
	f, err := os.OpenFile(d.path(cgroup, file), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, d.path(cgroup, file), err)
	}
	return nil
}

func (d DirFS) Mkdir(cgroup string) error {
	err := os.Mkdir(d.path(cgroup), 0o755)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	return err
}

func (d DirFS) Rmdir(cgroup string) error { return os.Remove(d.path(cgroup)) }

func (d DirFS) Children(cgroup string) ([]string, error) {
	ents, err := os.ReadDir(d.path(cgroup))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (d DirFS) Exists(cgroup string) bool {
	_, err := os.Stat(d.path(cgroup))
	return err == nil
}
