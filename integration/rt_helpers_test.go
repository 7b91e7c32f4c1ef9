//go:build linux

package integration

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/testenv"
)

// stateDir is the rtshim state directory the shims under test use (the default).
const stateDir = "/run/rtshim"

// sched is one line of /bin/schedinfo's output (see testenv.Sched).
type sched = testenv.Sched

// parseSched returns the first "policy=..." line of out.
func parseSched(t testing.TB, out string) sched {
	t.Helper()
	s, err := testenv.ParseSched(out)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustRun runs a container that must exit 0 and returns its output.
func (d *Daemon) mustRun(t testing.TB, o RunOpts) string {
	t.Helper()
	out, code, err := d.Run(t, o)
	if err != nil || code != 0 {
		t.Fatalf("container %s: exit %d, %v; output:\n%s", o.ID, code, err, out)
	}
	return out
}

// start runs a detached container and waits until its program printed want.
func (d *Daemon) start(t testing.TB, o RunOpts, want string) {
	t.Helper()
	o.Detach = true
	if _, _, err := d.Run(t, o); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, d.OutputFile(o.ID), want)
}

// remove kills and deletes a container and its task, as `docker rm -f` does.
func (d *Daemon) remove(t testing.TB, id string) {
	t.Helper()
	if err := d.removeErr(t, id); err != nil {
		t.Fatal(err)
	}
}

// removeErr is remove for goroutines, which must not call t.Fatal.
func (d *Daemon) removeErr(t testing.TB, id string) error {
	d.Ctr(t, "tasks", "kill", "-s", "SIGKILL", id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, stderr, err := d.Ctr(t, "tasks", "delete", id)
		if err == nil || strings.Contains(stderr, "not found") {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := d.Ctr(t, "containers", "delete", id); err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// cpuFile is a file of container id's cgroup in the cpu hierarchy.
func (d *Daemon) cpuFile(id, file string) string {
	return filepath.Join(cgroupV1Path("cpu", d.CgroupPath(id)), file)
}

// claims lists rtshim's records of containers holding resources.
func claims(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(stateDir, "claims"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// shimPID finds the shim process serving container id: its command line is
// "<shim> -namespace <ns> -id <id> -address <d.Address> ...".
func (d *Daemon) shimPID(t testing.TB, id string) int {
	t.Helper()
	pid := d.findShim(id)
	if pid == 0 {
		t.Fatalf("no shim process for container %s", id)
	}
	return pid
}

// findShim is shimPID, returning 0 when no shim serves id.
func (d *Daemon) findShim(id string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") ||
			!slices.Contains(args, d.Address) || !slices.Contains(args, d.Namespace) {
			continue
		}
		if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) && args[i+1] == id {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

// claimsOf lists rtshim's claims of d's containers.
func (d *Daemon) claimsOf(t testing.TB) []string {
	var out []string
	for _, c := range claims(t) {
		// The shim's claims are "<namespace>.<id>.json"; runc-rt's name runc's --root, which
		// ends in the namespace ("runc%3A%2Frun%2Fcontainerd%2Frunc%2F<namespace>.<id>.json").
		if strings.HasPrefix(c, d.Namespace+".") || strings.Contains(c, "%2F"+d.Namespace+".") {
			out = append(out, c)
		}
	}
	return out
}

// assertRestored fails when the cpu tree differs from before, other than cgroups that did
// not exist before and hold no budget and no quota now (the namespace cgroup that runc
// creates, and removes nowhere), or when rtshim still holds a claim of d's containers.
// Namespaces of other test daemons (another go test on the same host) are left out.
func (d *Daemon) assertRestored(t testing.TB, before map[string]string) {
	t.Helper()
	after := snapshotCPUTree(t)
	foreign := func(k string) bool {
		rel, _ := strings.CutPrefix(k, cgroupV1Path("cpu", "/"))
		rel = strings.TrimPrefix(rel, "/")
		return strings.HasPrefix(rel, tempPrefix) && !strings.HasPrefix(rel, d.Namespace+"/")
	}
	for _, m := range []map[string]string{before, after} {
		maps.DeleteFunc(m, func(k, _ string) bool { return foreign(k) })
	}
	for k, v := range after {
		if _, ok := before[k]; !ok && (v == "0" || v == "-1") {
			before[k] = v
		}
	}
	if diff := diffCPUTree(before, after); len(diff) > 0 {
		t.Errorf("cpu cgroup tree not restored:\n%s", strings.Join(diff, "\n"))
	}
	if c := d.claimsOf(t); len(c) > 0 {
		t.Errorf("rtshim claims left: %v", c)
	}
}

// requireRTGroupSched skips unless the host has cgroup v1 RT group scheduling.
func requireRTGroupSched(t testing.TB) {
	t.Helper()
	if !exists(cgroupV1Path("cpu", "cpu.rt_runtime_us")) {
		t.Skip("needs cgroup v1 with CONFIG_RT_GROUP_SCHED (no cpu.rt_runtime_us at the cpu hierarchy's root)")
	}
}

// runcIgnoresScheduler reports whether the runc under test predates process.scheduler
// (runc < 1.2, e.g. Debian's 1.1.5).
func runcIgnoresScheduler() bool {
	return strings.HasPrefix(runcVersion, "1.0.") || strings.HasPrefix(runcVersion, "1.1.")
}

// runTool runs a command-line client (docker, podman) with a 60 s timeout. err, when it fails,
// quotes its stderr and names it as label and args (the caller's part of the command line).
func runTool(env []string, label string, cmdline []string, args []string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, cmdline[0], append(cmdline[1:], args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("%s %s: %w: %s", label, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}
