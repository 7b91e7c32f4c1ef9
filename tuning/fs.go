// Package tuning keeps the kernel off a real-time container's CPUs for as long as it runs, and
// gives every host value back afterwards: a cpuset partition of its own (cgroup v2; an
// exclusive cpuset on v1), interrupts moved off its CPUs (and irqbalance told to leave them
// alone), each CPU's resume latency (C-states) and cpufreq governor.
//
// Every value it changes is host-global, so it keeps two kinds of record in the state dir, each
// written by atomic rename before the kernel is touched: a holder per container (what it asked
// for, where its cgroup is, which process owns it) and a baseline per file it changed (what the
// file held before rtshim first wrote it). What a file should hold is always recomputed from
// the baseline and the live holders, never counted: the last holder out writes the baseline
// back, and a holder whose shim died is released by the next lifecycle on the host.
//
// Every access to /proc and /sys goes through FS, every cgroup access through cgroupfix.FS,
// both rooted, so the logic runs on fake trees that behave like the kernel.
package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FS is the host's /proc and /sys. Paths are absolute ("/proc/irq/5/smp_affinity_list").
type FS interface {
	ReadFile(path string) (string, error)
	// WriteFile writes without O_CREATE or O_TRUNC, as sysfs and procfs expect; the kernel's
	// errno stays reachable with errors.Is.
	WriteFile(path, value string) error
	// ReadDir lists the names in a directory.
	ReadDir(path string) ([]string, error)
}

// DirFS is the host's files below Root ("/" on a real host).
type DirFS struct{ Root string }

func (d DirFS) path(p string) string { return filepath.Join(d.Root, p) }

func (d DirFS) ReadFile(p string) (string, error) {
	b, err := os.ReadFile(d.path(p))
	return strings.TrimSpace(string(b)), err
}

func (d DirFS) WriteFile(p, value string) error {
	f, err := os.OpenFile(d.path(p), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

func (d DirFS) ReadDir(p string) ([]string, error) {
	ents, err := os.ReadDir(d.path(p))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// HostFS is the host's /proc at Proc and /sys at Sys (DirFS for each).
type HostFS struct{ Proc, Sys string }

func (h HostFS) split(p string) (DirFS, string) {
	if rest, ok := strings.CutPrefix(p, "/proc/"); ok {
		return DirFS{Root: h.Proc}, rest
	}
	rest, _ := strings.CutPrefix(p, "/sys/")
	return DirFS{Root: h.Sys}, rest
}

func (h HostFS) ReadFile(p string) (string, error) { d, r := h.split(p); return d.ReadFile(r) }

func (h HostFS) WriteFile(p, v string) error { d, r := h.split(p); return d.WriteFile(r, v) }

func (h HostFS) ReadDir(p string) ([]string, error) { d, r := h.split(p); return d.ReadDir(r) }
