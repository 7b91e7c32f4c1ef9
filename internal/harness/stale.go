//go:build linux

package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// TempRoot holds the daemons' temp dirs: short paths, for the 108-byte unix socket limit.
	TempRoot = "/tmp"
	// TempPrefix names every temp dir, and so every containerd namespace and cgroup, that the
	// host tiers make: what SweepStale may remove, and what concurrent runs tell apart.
	TempPrefix = "rtshim-it-"

	// RunContainerdDir is where shims and runc keep state that containerd's own root and
	// state settings do not move: runc's root (runc/<namespace>), shim sockets of shims built
	// with containerd < 2.3 libraries (s/<sha256>), ctr's default fifo dir.
	RunContainerdDir = "/run/containerd"
)

// NewRunDir makes a directory for what this run must not leave behind: under TempRoot, named
// TempPrefix* (so its name can be a containerd namespace and a cgroup), owned by this process:
// SweepStale removes it, and what it names, once the process is gone.
func NewRunDir() (string, error) {
	dir, err := os.MkdirTemp(TempRoot, TempPrefix)
	if err != nil {
		return "", err
	}
	if err := writeOwner(dir); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	return dir, nil
}

func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// SweepStale tears down what an earlier run left when it was killed before its cleanups ran
// (a go test timeout does that): temp dirs whose owning test process is gone, with their
// daemons, shims, containers and cgroups; then cgroups and runc state of namespaces whose
// temp dir is gone (an earlier cleanup failed half way). tier prefixes what it prints.
func (e *Env) SweepStale(tier string) {
	report := func(errs []error) {
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", tier, err)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(TempRoot, TempPrefix+"*"))
	for _, dir := range dirs {
		if !isStale(dir) {
			continue
		}
		fmt.Printf("%s: cleaning up after an earlier run: %s\n", tier, dir)
		errs := teardown(filepath.Join(e.ContainerdDir, "ctr"), dir, filepath.Base(dir), nil)
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
		report(errs)
	}

	mounts, _ := cgroupMounts()
	for _, m := range append(mounts, filepath.Join(RunContainerdDir, "runc")) {
		leftovers, _ := filepath.Glob(filepath.Join(m, TempPrefix+"*"))
		for _, p := range leftovers {
			ns := filepath.Base(p)
			if Exists(filepath.Join(TempRoot, ns)) {
				continue
			}
			fmt.Printf("%s: cleaning up after an earlier run: %s\n", tier, p)
			var errs []error
			if strings.HasPrefix(p, CgroupRoot+"/") {
				if err := KillCgroupTree("/"+ns, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
				errs = append(errs, RemoveCgroupTree("/"+ns)...)
			} else if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
			report(errs)
		}
	}
}

// isStale reports whether dir's owner (the test binary that made it) is gone.
func isStale(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		// No owner yet: stale only if it is not being set up right now.
		st, err := os.Stat(dir)
		return err == nil && time.Since(st.ModTime()) > time.Minute
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err != nil || !ProcessAlive(pid)
}

// ForeignRun reports whether name (a temp dir's, so a namespace's) belongs to another live
// test binary: a concurrent run, whose state is not ours to judge or remove.
func ForeignRun(name string) bool {
	if !strings.HasPrefix(name, TempPrefix) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(TempRoot, name, ownerFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid != os.Getpid() && ProcessAlive(pid)
}

// OthersRunning reports whether another test binary has live daemons.
func OthersRunning() bool {
	dirs, _ := filepath.Glob(filepath.Join(TempRoot, TempPrefix+"*"))
	return slices.ContainsFunc(dirs, func(dir string) bool { return ForeignRun(filepath.Base(dir)) })
}

// TidyRunDir removes RunContainerdDir's directories once they are empty, and reports what
// the run left there: runc state of a test namespace, and, when the run created
// RunContainerdDir (strict), anything. While another test binary runs, it does nothing: the
// state may be that run's.
func TidyRunDir(strict bool) error {
	if OthersRunning() {
		return nil
	}
	var left []string
	for _, sub := range []string{"runc", "s", "fifo"} {
		p := filepath.Join(RunContainerdDir, sub)
		if err := os.Remove(p); err == nil || errors.Is(err, os.ErrNotExist) {
			continue
		}
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if strict || strings.HasPrefix(e.Name(), TempPrefix) {
				left = append(left, filepath.Join(p, e.Name()))
			}
		}
	}
	if err := os.Remove(RunContainerdDir); err != nil && !errors.Is(err, os.ErrNotExist) && strict && len(left) == 0 {
		left = append(left, RunContainerdDir)
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, " "))
	}
	return nil
}
