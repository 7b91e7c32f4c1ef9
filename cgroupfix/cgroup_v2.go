package cgroupfix

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/log"
)

// ProcCgroupV2 returns the cgroup v2 path of process pid, as the kernel reports it in the
// "0::/path" line of procRoot/<pid>/cgroup. Whatever the cgroup driver made of
// linux.cgroupsPath (cgroupfs "/parent/id", systemd "/a.slice/a-b.slice/prefix-id.scope"),
// this is where the process really is.
func ProcCgroupV2(procRoot string, pid int) (string, error) {
	p := filepath.Join(procRoot, strconv.Itoa(pid), "cgroup")
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("find the cgroup of process %d: %w", pid, err)
	}
	defer f.Close()
	cg, err := parseProcCgroupV2(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return cg, nil
}

// parseProcCgroupV2 reads /proc/<pid>/cgroup ("hierarchy-ID:controllers:path" lines) and
// returns the path of the unified hierarchy's line, "0::/path". A path outside the reader's
// cgroup namespace ("/../x") or one that is not clean is refused: it names no cgroup below the
// mount the shim writes to.
func parseProcCgroupV2(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "0::")
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "/") || path.Clean(rest) != rest || strings.Contains(rest, "/../") ||
			strings.HasSuffix(rest, "/..") {
			return "", fmt.Errorf("cgroup v2 path %q is not below this cgroup namespace's root", truncate(rest))
		}
		if rest == "/" {
			return "", fmt.Errorf("process is in the root cgroup, not a container's own")
		}
		return rest, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no cgroup v2 line (\"0::/path\")")
}

// LocateV2 makes the claim of container ns/id follow leaf, the cgroup its init really is in
// (ProcCgroupV2), and reports whether it had to: the claim was made before runc create from
// linux.cgroupsPath, which only names the cgroup indirectly. When the two differ, the pod-level
// quota exemption moves from the guessed pod cgroup (restored) to the real one (the parent of
// leaf). A container without a claim has nothing to locate.
func (m *Manager) LocateV2(ctx context.Context, ns, id, leaf string) (bool, error) {
	unlock, err := m.State.Lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	c, err := m.State.LoadClaim(ns, id)
	if err != nil || c == nil || c.Leaf == leaf {
		return false, err
	}
	log.G(ctx).WithField("guessed", c.Leaf).WithField("cgroup", leaf).
		Warn("container's init is not in the cgroup linux.cgroupsPath names: following its real cgroup")
	// Undo first, then record, then redo: a crash in between leaves at worst an unexempted
	// pod, never an exempted one that no claim points at.
	if c.ExemptQuota && c.Pod != "" {
		if err := m.restorePod(ctx, c); err != nil {
			return false, err
		}
		c.Pod = path.Dir(leaf)
	}
	c.Leaf = leaf
	if err := m.State.SaveClaim(c); err != nil {
		return false, fmt.Errorf("save claim of %s: %w", c.ID, err)
	}
	if c.ExemptQuota && c.Pod != "" && c.Pod != "/" {
		if err := m.exemptPod(c.Pod); err != nil {
			return true, err
		}
	}
	return true, nil
}
