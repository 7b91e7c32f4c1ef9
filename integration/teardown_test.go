//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Files in a daemon's temp dir (see startContainerd).
const (
	ownerFile  = "owner.pid"       // pid of the test binary that owns the dir
	socketName = "containerd.sock" // the daemon's gRPC socket
	bundlesDir = "state/io.containerd.runtime.v2.task"
)

// teardown undoes everything the daemon in dir made, from the dir alone (so
// it also cleans up after a killed run): tasks and containers (through the
// daemon if it still serves), the daemon and its shims, processes left in
// the containers' cgroups, mounts under dir, the cgroups, and runc and shim
// state in /run/containerd. It leaves dir itself for the caller to remove.
func teardown(dir string, daemon *os.Process) []error {
	var errs []error
	address := filepath.Join(dir, socketName)
	ownNS := filepath.Base(dir)

	if serving(address) {
		// Errors count only while the daemon serves: one that is dying (a
		// test killed it) is dealt with below.
		if delErrs := deleteAll(address); serving(address) {
			errs = append(errs, delErrs...)
		}
	}
	containers := bundles(dir)

	errs = append(errs, stopProcesses(dir, daemon)...)

	// Everything in the cgroups of the daemon's own namespace, and only the
	// known containers' cgroups of any other namespace a test used.
	targets := []string{"/" + ownNS}
	for _, c := range containers {
		if c.ns != ownNS {
			targets = append(targets, "/"+c.ns+"/"+c.id)
		}
	}
	for _, rel := range targets {
		if err := killCgroupTree(rel, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, unmountUnder(dir)...)
	for _, rel := range targets {
		errs = append(errs, removeCgroupTree(rel)...)
	}
	// Another namespace's parent cgroup goes only if empty: it is not ours alone.
	if mounts, err := cgroupMounts(); err == nil {
		for _, c := range containers {
			for _, m := range mounts {
				if c.ns != ownNS {
					_ = syscall.Rmdir(filepath.Join(m, c.ns))
				}
			}
		}
	}

	// runc's root and the sockets of shims built with containerd < 2.3
	// libraries are in /run/containerd whatever the daemon's config says.
	remove := []string{filepath.Join(runContainerdDir, "runc", ownNS)}
	for _, c := range containers {
		remove = append(remove,
			filepath.Join(runContainerdDir, "runc", c.ns, c.id),
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

// serving reports whether a daemon answers on the unix socket address.
func serving(address string) bool {
	c, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// deleteAll kills and deletes every task and deletes every container in
// every namespace of the daemon at address.
func deleteAll(address string) []error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list := func(ns string, args ...string) []string {
		out, _, err := runCtr(ctx, address, ns, args...)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return strings.Fields(out)
	}
	for _, ns := range list("default", "namespaces", "ls", "-q") {
		for _, id := range list(ns, "tasks", "ls", "-q") {
			_, _, _ = runCtr(ctx, address, ns, "tasks", "kill", "-a", "-s", "KILL", id)
			if _, _, err := runCtr(ctx, address, ns, "tasks", "delete", "-f", id); err != nil {
				errs = append(errs, err)
			}
		}
		for _, id := range list(ns, "containers", "ls", "-q") {
			if _, _, err := runCtr(ctx, address, ns, "containers", "delete", id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

type nsID struct{ ns, id string }

// bundles lists the containers whose shim bundles are still in dir's state:
// after a clean delete there are none.
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

// legacyShimSocket is where a shim built with containerd < 2.3 libraries
// (pkg/shim SocketAddress) listens for a container: /run/containerd/s/
// followed by the sha256 of "<daemon address>/<namespace>/<id>[/debug]".
// The shim removes it on a clean exit; a killed shim leaves it.
func legacyShimSocket(address, ns, id string, debug bool) string {
	p := filepath.Join(address, ns, id)
	if debug {
		p = filepath.Join(p, "debug")
	}
	return filepath.Join(runContainerdDir, "s", fmt.Sprintf("%x", sha256.Sum256([]byte(p))))
}

// stopProcesses stops every process whose command line mentions a path
// under dir (the daemon, its shims, runc): SIGTERM, then SIGKILL after 10s.
// daemon, when known, is our child and is reaped by whoever Waits for it.
func stopProcesses(dir string, daemon *os.Process) []error {
	pids := processesUnder(dir)
	if daemon != nil && !slices.Contains(pids, daemon.Pid) && processAlive(daemon.Pid) {
		pids = append(pids, daemon.Pid)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(pids) > 0 && time.Now().Before(deadline) {
			pids = slices.DeleteFunc(pids, func(pid int) bool { return !processAlive(pid) })
			time.Sleep(20 * time.Millisecond)
		}
		if len(pids) == 0 {
			return nil
		}
	}
	return []error{fmt.Errorf("processes %v of %s survived SIGKILL", pids, dir)}
}

// processesUnder returns the pids (not ours) whose command line mentions a
// path under dir: the daemon's --config, the shims' -address, runc's --log.
func processesUnder(dir string) []int {
	s := dir + "/"
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may hold
	// spaces and parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

type mountInfo struct{ point, fstype string }

// readMountInfo parses /proc/self/mountinfo: mount point and fs type.
func readMountInfo() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []mountInfo
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root point options [optional...] - fstype source super
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 1 {
			continue
		}
		mounts = append(mounts, mountInfo{point: unescapeOctal(fields[4]), fstype: tail[0]})
	}
	return mounts, s.Err()
}

// unescapeOctal undoes mountinfo's \NNN escapes (space, tab, newline, \).
func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) []error {
	mounts, err := readMountInfo()
	if err != nil {
		return []error{err}
	}
	var points []string
	for _, m := range mounts {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			points = append(points, m.point)
		}
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
