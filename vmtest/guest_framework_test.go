//go:build linux

package vmtest

// The guest's framework: one containerd for the whole run (the VM is new each boot, and a
// daemon takes seconds to start under emulation), ctr against it, and cgroup v2 helpers.
//
//	guest(t)                     the daemon; skips outside the VM
//	d.ctr / d.mustCtr            ctr in the test namespace
//	d.run(t, runOpts)            ctr run a container from /rootfs
//	d.start(t, runOpts, want)    run detached and wait for its output
//	d.remove(t, id)              kill and delete, as docker rm -f
//	d.pid(t, id), cgroupOf(pid)  the container's init and its cgroup (/proc/<pid>/cgroup)
//	readCgroup, cpuMax           cgroup v2 files
//	assertNoResidue(t, ids...)   cgroups, claims and baselines are gone

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/testenv"
)

const (
	stockRuntime = "io.containerd.runc.v2"
	rtRuntime    = "io.containerd.rt.v2"

	// namespace is the containerd namespace of every test container; ctr puts a container's
	// cgroup at /<namespace>/<id>.
	namespace  = "v2"
	cgroupRoot = "/sys/fs/cgroup"
	rootfs     = "/rootfs"
	stateDir   = "/run/rtshim" // the shim's default state_dir

	// Under software emulation everything takes a while.
	ctrTimeout   = 2 * time.Minute
	startTimeout = time.Minute
	outputWait   = 30 * time.Second
)

// guestDaemon is set by TestMain in the VM.
var guestDaemon *daemon

type daemon struct {
	dir, address string
	proc         *os.Process
	exited       chan struct{}
}

const daemonConfig = testenv.DaemonConfig

// suiteConfig is the rtshim config of the guest's shims ($RTSHIM_CONFIG) unless a test names
// another: the kernel's limits rather than the default ones, as in the integration suite, so
// that the tests of mechanisms (grant mode's CAP_SYS_NICE, priority 99) are not tests of the
// defaults.
const suiteConfig = `[limits]
max_priority = 99
min_nice = -20
max_rt_runtime_us = 950000
max_pod_rt_runtime_us = 950000
min_rt_runtime_us = 1
honor_env = true
`

// startDaemon starts containerd (found on PATH, as are the shims and runc) and waits until it
// serves.
func startDaemon() (*daemon, error) {
	d := &daemon{dir: "/run/vmtest", exited: make(chan struct{})}
	d.address = filepath.Join(d.dir, "containerd.sock")
	if err := os.MkdirAll(filepath.Join(d.dir, "output"), 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(d.dir, "config.toml")
	if err := os.WriteFile(config, []byte(strings.ReplaceAll(daemonConfig, "{{dir}}", d.dir)), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(d.logPath())
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	suite := filepath.Join(d.dir, "rtshim-suite.toml")
	if err := os.WriteFile(suite, []byte(suiteConfig), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("containerd", "--config", config)
	cmd.Env = append(os.Environ(), "RTSHIM_CONFIG="+suite) // the shims read it in containerd's environment
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d.proc = cmd.Process
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	start := time.Now()
	for time.Since(start) < startTimeout {
		select {
		case <-d.exited:
			d.printLog(100)
			return nil, fmt.Errorf("containerd exited during start: %v", cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := d.ctrContext(ctx, "version")
		cancel()
		if err == nil {
			fmt.Printf("vmtest: containerd serves after %v\n", time.Since(start).Round(100*time.Millisecond))
			return d, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.printLog(100)
	return nil, fmt.Errorf("containerd did not serve within %v", startTimeout)
}

func (d *daemon) logPath() string { return filepath.Join(d.dir, "containerd.log") }

// printLog prints the last n lines of containerd's log (and so the shims' logs).
func (d *daemon) printLog(n int) {
	b, _ := os.ReadFile(d.logPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-n):]
	fmt.Printf("vmtest: containerd log (last %d lines):\n%s\n", len(lines), strings.Join(lines, "\n"))
}

// stop deletes every task and container left, and stops containerd.
func (d *daemon) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	var errs []error
	if out, _, err := d.ctrContext(ctx, "tasks", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			d.ctrContext(ctx, "tasks", "kill", "-s", "SIGKILL", id)
			d.ctrContext(ctx, "tasks", "delete", "-f", id)
		}
	}
	if out, _, err := d.ctrContext(ctx, "containers", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			if _, _, err := d.ctrContext(ctx, "containers", "delete", id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	_ = d.proc.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.proc.Kill()
		errs = append(errs, errors.New("containerd did not stop on SIGTERM"))
	}
	return errors.Join(errs...)
}

// guest returns the VM's daemon; outside the VM the test skips.
func guest(t testing.TB) *daemon {
	t.Helper()
	if guestDaemon == nil {
		t.Skip("runs inside the cgroup v2 VM (make test-v2)")
	}
	return guestDaemon
}

func (d *daemon) ctrContext(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", d.address, "--namespace", namespace}, args...)...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), nil
}

// ctr runs ctr against the daemon in the test namespace.
func (d *daemon) ctr(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	return d.ctrContext(ctx, args...)
}

// mustCtr is ctr that fails the test on error and returns stdout.
func (d *daemon) mustCtr(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := d.ctr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runOpts is a container for daemon.run, from the rootfs at /rootfs.
type runOpts struct {
	id          string
	runtime     string            // default rtRuntime
	annotations map[string]string // --annotation
	privileged  bool
	cgroup      string // --cgroup: linux.cgroupsPath; default /<namespace>/<id>
	cpuQuota    int64  // --cpu-quota, µs; 0: none
	cpuPeriod   uint64 // --cpu-period, µs; 0: none
	cpusetCPUs  string // --cpuset-cpus: linux.resources.cpu.cpus
	detach      bool   // output goes to d.outputFile(id)
	args        []string
}

func (d *daemon) outputFile(id string) string { return filepath.Join(d.dir, "output", id+".log") }

// run runs a container with ctr run (--rm unless detached). err is set when ctr itself failed
// (create or start), and quotes ctr's message.
func (d *daemon) run(t testing.TB, o runOpts) (out string, exitCode int, err error) {
	t.Helper()
	if o.runtime == "" {
		o.runtime = rtRuntime
	}
	args := []string{"run", "--runtime", o.runtime}
	if o.detach {
		args = append(args, "--detach", "--log-uri", "file://"+d.outputFile(o.id))
	} else {
		args = append(args, "--rm")
	}
	for _, k := range slices.Sorted(maps.Keys(o.annotations)) {
		args = append(args, "--annotation", k+"="+o.annotations[k])
	}
	if o.privileged {
		args = append(args, "--privileged")
	}
	if o.cgroup != "" {
		args = append(args, "--cgroup", o.cgroup)
	}
	if o.cpuQuota != 0 {
		args = append(args, "--cpu-quota", strconv.FormatInt(o.cpuQuota, 10))
	}
	if o.cpuPeriod != 0 {
		args = append(args, "--cpu-period", strconv.FormatUint(o.cpuPeriod, 10))
	}
	if o.cpusetCPUs != "" {
		args = append(args, "--cpuset-cpus", o.cpusetCPUs)
	}
	args = append(append(args, "--rootfs", rootfs, o.id), o.args...)

	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	var combined bytes.Buffer
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", d.address, "--namespace", namespace}, args...)...)
	cmd.Stdout, cmd.Stderr = &combined, &combined
	runErr := cmd.Run()
	out = combined.String()
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
		return out, 0, nil
	case ctx.Err() != nil:
		return out, -1, fmt.Errorf("ctr run %s: timed out after %v; output:\n%s", o.id, ctrTimeout, out)
	case errors.As(runErr, &exitErr):
		for line := range strings.Lines(out) {
			if msg, ok := strings.CutPrefix(line, "ctr: "); ok {
				return out, exitErr.ExitCode(), fmt.Errorf("ctr run %s: %s", o.id, strings.TrimSpace(msg))
			}
		}
		return out, exitErr.ExitCode(), nil
	default:
		return out, -1, fmt.Errorf("ctr run %s: %w", o.id, runErr)
	}
}

// mustRun runs a container that must exit 0 and returns its output.
func (d *daemon) mustRun(t testing.TB, o runOpts) string {
	t.Helper()
	out, code, err := d.run(t, o)
	if err != nil || code != 0 {
		t.Fatalf("container %s: exit %d, %v; output:\n%s", o.id, code, err, out)
	}
	return out
}

// start runs a detached container and waits until its output contains want. The container
// is removed when the test ends, if the test did not remove it.
func (d *daemon) start(t testing.TB, o runOpts, want string) {
	t.Helper()
	o.detach = true
	t.Cleanup(func() { d.removeQuietly(o.id) })
	if _, _, err := d.run(t, o); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(outputWait)
	for {
		b, _ := os.ReadFile(d.outputFile(o.id))
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: want %q in its output within %v, got:\n%s", o.id, want, outputWait, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// remove kills and deletes a container and its task, as `docker rm -f` does.
func (d *daemon) remove(t testing.TB, id string) {
	t.Helper()
	if err := d.removeQuietly(id); err != nil {
		t.Fatal(err)
	}
}

func (d *daemon) removeQuietly(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	if _, _, err := d.ctrContext(ctx, "containers", "info", id); err != nil {
		return nil // gone already
	}
	d.ctrContext(ctx, "tasks", "kill", "-s", "SIGKILL", id)
	for {
		_, stderr, err := d.ctrContext(ctx, "tasks", "delete", id)
		if err == nil || strings.Contains(stderr, "not found") {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _, err := d.ctrContext(ctx, "containers", "delete", id)
	return err
}

// client is containerd's Go client, for what ctr cannot do (task Update).
func (d *daemon) client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(d.address, client.WithDefaultNamespace(namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// task loads container id's task through the containerd client.
func (d *daemon) task(ctx context.Context, t testing.TB, id string) client.Task {
	t.Helper()
	c, err := d.client(t).LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// pid is the PID of container id's init.
func (d *daemon) pid(t testing.TB, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	return int(d.task(ctx, t, id).Pid())
}

// updateCPU sets a running container's CFS quota through containerd's task Update, as `docker
// update --cpus` and a kubelet in-place resize do.
func (d *daemon) updateCPU(t testing.TB, id string, quota int64, period uint64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	return d.task(ctx, t, id).Update(ctx, client.WithResources(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}))
}

// cgroupOf reads process pid's cgroup v2 path from the "0::" line of /proc/<pid>/cgroup,
// independently of the shim's own parser.
func cgroupOf(t testing.TB, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p
		}
	}
	t.Fatalf("/proc/%d/cgroup has no 0:: line", pid)
	return ""
}

// readCgroup reads a file of cgroup cg ("/a/b").
func readCgroup(t testing.TB, cg, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cgroupRoot, cg, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cpuMax(t testing.TB, cg string) string { return readCgroup(t, cg, "cpu.max") }

func cgroupExists(cg string) bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, cg))
	return err == nil
}

// makePod creates a pod-level cgroup with a CFS quota, as kubelet does before the pod's
// containers, and removes it when the test ends.
func makePod(t testing.TB, cg, quota string) {
	t.Helper()
	dir := filepath.Join(cgroupRoot, cg)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeCgroup(dir); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(quota), 0); err != nil {
		t.Fatal(err)
	}
}

// removeCgroup rmdirs a cgroup, retrying EBUSY briefly: the kernel lets go of a cgroup a
// moment after its last process exits.
func removeCgroup(dir string) error {
	var err error
	for range 100 {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// claimOf is the shim's record of container id, nil if it holds none.
func claimOf(t testing.TB, id string) *cgroupfix.Claim {
	t.Helper()
	c, err := cgroupfix.State{Dir: stateDir}.LoadClaim(namespace, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stateRecords lists the shim's claim and baseline records.
func stateRecords() []string {
	var out []string
	for _, sub := range []string{"claims", "baselines"} {
		ents, _ := os.ReadDir(filepath.Join(stateDir, sub))
		for _, e := range ents {
			out = append(out, path.Join(sub, e.Name()))
		}
	}
	return out
}

// assertNoResidue fails when a container's cgroup or any shim record is left.
func assertNoResidue(t testing.TB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if cg := "/" + namespace + "/" + id; cgroupExists(cg) {
			t.Errorf("cgroup %s left behind", cg)
		}
	}
	if recs := stateRecords(); len(recs) > 0 {
		t.Errorf("rtshim records left in %s: %v", stateDir, recs)
	}
}

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

const capSysNice = 23

// hasCap reads schedinfo's "capeff=<hex>" line.
func hasCap(t testing.TB, out string, bit uint) bool {
	t.Helper()
	for line := range strings.Lines(out) {
		if hex, ok := strings.CutPrefix(strings.TrimSpace(line), "capeff="); ok {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				t.Fatalf("capeff %q: %v", hex, err)
			}
			return v&(1<<bit) != 0
		}
	}
	t.Fatalf("no capeff line in:\n%s", out)
	return false
}
