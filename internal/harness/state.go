//go:build linux

package harness

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
)

// StateDir is the rtshim state directory the shims and runc-rt under test use (the default).
const StateDir = "/run/rtshim"

// Claims lists rtshim's records of containers holding resources (file names in
// StateDir/claims), every daemon's.
func Claims(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(StateDir, "claims"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// ClaimsOf lists rtshim's claims of d's containers.
func (d *Daemon) ClaimsOf(t testing.TB) []string {
	t.Helper()
	var out []string
	// The shim's claims are named after the containerd namespace, runc-rt's after runc's
	// --root, which containerd's runc shim sets per namespace.
	shim, wrapper := cgroupfix.RecordName(d.Namespace, ""), cgroupfix.RecordName(d.WrapperNamespace(), "")
	for _, c := range Claims(t) {
		if strings.HasPrefix(c, shim) || strings.HasPrefix(c, wrapper) {
			out = append(out, c)
		}
	}
	return out
}

// ClaimOf is the shim's record of container id in the daemon's namespace, nil if it holds
// none.
func (d *Daemon) ClaimOf(t testing.TB, id string) *cgroupfix.Claim {
	t.Helper()
	return ClaimOf(t, d.Namespace, id)
}

// WrapperNamespace is the namespace of runc-rt's claims of d's containers: runc's --root,
// which containerd's runc shim sets per containerd namespace.
func (d *Daemon) WrapperNamespace() string {
	return "runc:" + filepath.Join(RunContainerdDir, "runc", d.Namespace)
}

// ClaimOf is rtshim's record of container ns/id, nil if there is none.
func ClaimOf(t testing.TB, ns, id string) *cgroupfix.Claim {
	t.Helper()
	c, err := cgroupfix.State{Dir: StateDir}.LoadClaim(ns, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StateRecords lists rtshim's claim, baseline and children's-sums records ("claims/<file>", …).
func StateRecords() []string {
	var out []string
	for _, sub := range []string{"claims", "baselines", "sums"} {
		ents, _ := os.ReadDir(filepath.Join(StateDir, sub))
		for _, e := range ents {
			out = append(out, path.Join(sub, e.Name()))
		}
	}
	return out
}

// ShimPIDs finds the shim processes serving container id: their command line is
// "<shim> -namespace <ns> -id <id> -address <d.Address> ...". (containerd 1.x kept the pid
// in the bundle's shim.pid; containerd 2.x shims write no such file, and ctr does not show
// it.)
func (d *Daemon) ShimPIDs(id string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") ||
			!slices.Contains(args, d.Address) || !slices.Contains(args, d.Namespace) {
			continue
		}
		if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) && args[i+1] == id {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// FindShim is the pid of a shim serving container id, 0 if none does.
func (d *Daemon) FindShim(id string) int {
	if pids := d.ShimPIDs(id); len(pids) > 0 {
		return pids[0]
	}
	return 0
}

// ShimPID is FindShim that fails the test when no shim serves id.
func (d *Daemon) ShimPID(t testing.TB, id string) int {
	t.Helper()
	pid := d.FindShim(id)
	if pid == 0 {
		t.Fatalf("no shim process for container %s", id)
	}
	return pid
}
