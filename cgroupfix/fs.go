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
	"slices"
	"strings"

	"golang.org/x/sys/unix"
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
	b, err := readFile(d.path(cgroup, file))
	return strings.TrimSpace(string(b)), err
}

// readFile is os.ReadFile without the os.File: cgroupfs files can be polled, so os.Open adds
// every one to the runtime's epoll set and takes it out again on Close, which makes a read
// cost 2.5 times as much. A grant reads every sibling's runtime (and the period of those that
// hold some) while holding the host-wide lock, so this is what creates wait on when many
// containers start at once.
func readFile(p string) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) { return unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var small [128]byte
	buf := small[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, buf[len(buf):cap(buf)]) })
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
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
