//go:build linux

package harness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// teardown undoes everything the daemon in dir (namespace ns) made, from the dir alone, so
// that it also cleans up after a killed run: tasks and containers (through the daemon if it
// still serves, with the ctr binary ctr), the daemon and its shims, processes left in the
// containers' cgroups, mounts under dir, the cgroups, and runc and shim state in
// /run/containerd. It leaves dir itself for the caller to remove.
func teardown(ctr, dir, ns string, daemon *os.Process) []error {
	var errs []error
	address := filepath.Join(dir, socketName)

	if Serving(address) {
		// Errors count only while the daemon serves: one that is dying (a test killed it) is
		// dealt with below.
		if delErrs := deleteAll(ctr, address); Serving(address) {
			errs = append(errs, delErrs...)
		}
	}
	containers := bundles(dir)

	errs = append(errs, stopProcesses(dir, daemon)...)

	// Everything in the cgroups of the daemon's own namespace, and only the known
	// containers' cgroups of any other namespace a test used.
	targets := []string{"/" + ns}
	for _, c := range containers {
		if c.ns != ns {
			targets = append(targets, "/"+c.ns+"/"+c.id)
		}
	}
	for _, rel := range targets {
		if err := KillCgroupTree(rel, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, unmountUnder(dir)...)
	for _, rel := range targets {
		errs = append(errs, RemoveCgroupTree(rel)...)
	}
	// Another namespace's parent cgroup goes only if empty: it is not ours alone.
	if mounts, err := cgroupMounts(); err == nil {
		for _, c := range containers {
			for _, m := range mounts {
				if c.ns != ns {
					_ = syscall.Rmdir(filepath.Join(m, c.ns))
				}
			}
		}
	}

	// runc's root and the sockets of shims built with containerd < 2.3 libraries are in
	// /run/containerd whatever the daemon's config says.
	remove := []string{filepath.Join(RunContainerdDir, "runc", ns)}
	for _, c := range containers {
		remove = append(remove,
			filepath.Join(RunContainerdDir, "runc", c.ns, c.id),
			legacyShimSocket(address, c.ns, c.id, false),
			legacyShimSocket(address, c.ns, c.id, true))
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// TeardownRunDir is a daemon's teardown for a NewRunDir that holds another engine's state
// (podman's): the processes that name a path under dir, what is left in the cgroups of its
// namespace (dir's base name) and the cgroups, the mounts under dir. It leaves dir for the
// caller to remove.
func TeardownRunDir(dir string) []error { return teardown("", dir, filepath.Base(dir), nil) }

// Serving reports whether a daemon answers on the unix socket address.
func Serving(address string) bool {
	c, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// deleteAll kills and deletes every task and deletes every container in every namespace of
// the daemon at address.
func deleteAll(ctr, address string) []error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(ns string, args ...string) (string, error) {
		out, _, err := ctrAt(ctx, ctr, address, ns, args...)
		return out, err
	}
	list := func(ns string, args ...string) []string {
		out, err := run(ns, args...)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return strings.Fields(out)
	}
	for _, ns := range list("default", "namespaces", "ls", "-q") {
		for _, id := range list(ns, "tasks", "ls", "-q") {
			_, _ = run(ns, "tasks", "kill", "-a", "-s", "KILL", id)
			if _, err := run(ns, "tasks", "delete", "-f", id); err != nil {
				errs = append(errs, err)
			}
		}
		for _, id := range list(ns, "containers", "ls", "-q") {
			if _, err := run(ns, "containers", "delete", id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

type nsID struct{ ns, id string }

// bundles lists the containers whose shim bundles are still in dir's state: after a clean
// delete there are none.
func bundles(dir string) []nsID {
	var found []nsID
	nss, _ := os.ReadDir(filepath.Join(dir, bundlesDir))
	for _, ns := range nss {
		ids, _ := os.ReadDir(filepath.Join(dir, bundlesDir, ns.Name()))
		for _, id := range ids {
			found = append(found, nsID{ns.Name(), id.Name()})
		}
	}
	return found
}

// legacyShimSocket is where a shim built with containerd < 2.3 libraries (pkg/shim
// SocketAddress) listens for a container: /run/containerd/s/ followed by the sha256 of
// "<daemon address>/<namespace>/<id>[/debug]". The shim removes it on a clean exit; a killed
// shim leaves it.
func legacyShimSocket(address, ns, id string, debug bool) string {
	p := filepath.Join(address, ns, id)
	if debug {
		p = filepath.Join(p, "debug")
	}
	return filepath.Join(RunContainerdDir, "s", fmt.Sprintf("%x", sha256.Sum256([]byte(p))))
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) []error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return []error{err}
	}
	points := make([]string, 0, len(mounts))
	for _, m := range mounts {
		points = append(points, m.Mountpoint)
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errs
}
