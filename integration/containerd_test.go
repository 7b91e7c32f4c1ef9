//go:build linux

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/testenv"
)

const (
	ctrTimeout   = 60 * time.Second
	startTimeout = 30 * time.Second
)

// Daemon is a private containerd started by startContainerd: its own root,
// state, sockets and containerd namespace, all under Dir.
type Daemon struct {
	// Namespace is the containerd namespace Ctr and Run use, unique to this
	// daemon; ctr puts a container's cgroup at /<Namespace>/<id>.
	Namespace string
	// Address is the daemon's gRPC socket.
	Address string
	// Dir holds everything of the daemon: config.toml, containerd.log,
	// root/, state/, output/ (detached containers' stdout and stderr).
	Dir string

	proc   *os.Process
	exited chan struct{}
	runs   atomic.Int64
	// args and env start the daemon process (again, for Restart).
	args, env []string
}

// daemonConfig is the generated config.toml: CRI and the plugins that write
// outside the daemon's own dirs (NRI's socket in /var/run/nri, "opt" in
// /opt/containerd) are off. Config version 3 is what containerd 2.0 and
// later read.
const daemonConfig = testenv.DaemonConfig

// socketDirConfig, for containerd ≥ 2.3, moves the sockets of shims built
// with containerd ≥ 2.3 libraries under the daemon's dir; older shims use
// /run/containerd/s regardless, and older daemons have no socket_dir.
const socketDirConfig = `
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{{dir}}/s"
`

// suiteConfig is the rtshim config of the suite's shims (through $RTSHIM_CONFIG) unless a test
// names another: the kernel's limits rather than the default ones, so that the tests of
// mechanisms (grant mode's CAP_SYS_NICE, large budgets, RTSHIM_ variables, priority 99) are not
// tests of the defaults. TestDefaultLimits tests those, with a copy of contrib/rtshim.toml.
const suiteConfig = `[limits]
max_priority = 99
min_nice = -20
max_rt_runtime_us = 950000
max_pod_rt_runtime_us = 950000
min_rt_runtime_us = 1
honor_env = true
`

// startContainerd starts a private containerd (RTSHIM_CONTAINERD_DIR's, or
// RTSHIM_TOOLS_DIR's) and waits until it serves. Its PATH starts with
// RTSHIM_RUNC (as runc, when set), RTSHIM_BIN_DIR, RTSHIM_CONTAINERD_DIR and
// RTSHIM_TOOLS_DIR, so it finds containerd-shim-rt-v2,
// containerd-shim-runc-v2 and runc there. extraTOML is appended to the
// config; it must not repeat the tables above.
//
// t.Cleanup deletes every task and container, stops the daemon and kills
// its shims and anything left in its containers' cgroups, unmounts, removes
// the cgroups and the temp dir, and logs the daemon's log if t failed.
func startContainerd(t testing.TB, extraTOML ...string) *Daemon {
	t.Helper()
	return startContainerdWith(t, DaemonOpts{TOML: extraTOML})
}

// DaemonOpts are the less common ways to start a daemon.
type DaemonOpts struct {
	TOML []string // appended to the config, as startContainerd's extraTOML
	// PathDir is put first in the daemon's PATH, e.g. to make a name resolve to another shim.
	PathDir string
	Env     []string // added to the daemon's environment (which its shims inherit)
	// CRI keeps containerd's CRI plugins and the pod sandbox controller, which the generated
	// config disables; the caller configures them in TOML (see cri_test.go).
	CRI bool
}

// criPlugins are the plugins DaemonOpts.CRI takes off daemonConfig's disabled_plugins.
var criPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
}

// startContainerdWith is startContainerd with options.
func startContainerdWith(t testing.TB, o DaemonOpts) *Daemon {
	t.Helper()
	requireRoot(t)
	extraTOML := o.TOML

	dir, err := os.MkdirTemp(tempRoot, tempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Namespace: filepath.Base(dir),
		Address:   filepath.Join(dir, socketName),
		Dir:       dir,
	}
	t.Cleanup(func() { d.cleanup(t) })
	writeFile(t, dir, ownerFile, strconv.Itoa(os.Getpid()))

	config := daemonConfig
	if o.CRI {
		for _, p := range criPlugins {
			config = strings.Replace(config, "  \""+p+"\",\n", "", 1)
		}
	}
	if daemonVersion.atLeast(2, 3) {
		config += socketDirConfig
	}
	config = strings.ReplaceAll(config, "{{dir}}", dir) + strings.Join(extraTOML, "\n")
	configPath := writeFile(t, dir, "config.toml", config)
	if err := os.Mkdir(filepath.Join(dir, "output"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := []string{o.PathDir}
	if runcBin != filepath.Join(toolsDir, "runc") {
		// The shims run "runc" from PATH: give them RTSHIM_RUNC by that name.
		runcDir := filepath.Join(dir, "runc-bin")
		if err := os.Mkdir(runcDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(runcBin, filepath.Join(runcDir, "runc")); err != nil {
			t.Fatal(err)
		}
		path = append(path, runcDir)
	}
	path = append(path, binDir, containerdDir, toolsDir, os.Getenv("PATH"))
	d.args = []string{filepath.Join(containerdDir, "containerd"), "--config", configPath}
	d.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=")
	}), "PATH="+strings.Join(slices.DeleteFunc(slices.Compact(path), func(p string) bool { return p == "" }), ":"))
	d.env = append(d.env, o.Env...)
	if !slices.ContainsFunc(o.Env, func(kv string) bool { return strings.HasPrefix(kv, "RTSHIM_CONFIG=") }) {
		// The shims read $RTSHIM_CONFIG from containerd's environment.
		d.env = append(d.env, "RTSHIM_CONFIG="+writeFile(t, dir, "rtshim-suite.toml", suiteConfig))
	}
	d.launch(t)
	return d
}

// launch starts the daemon process and waits until it serves; the log is appended to.
func (d *Daemon) launch(t testing.TB) {
	t.Helper()
	logFile, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies without its cleanups (go test -timeout), take
	// the daemon along; the next run's sweepStale removes the rest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	d.proc, d.exited = cmd.Process, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("containerd exited during start: %v", cmd.ProcessState)
		default:
		}
		if serving(d.Address) {
			if _, _, err := d.Ctr(t, "version"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not serve on %s within %v", d.Address, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops the daemon (SIGTERM, as a service manager does; its shims and containers go
// on) and starts it again with the same config, state and environment.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if err := d.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("containerd did not stop within 30s of SIGTERM")
	}
	d.launch(t)
}

func (d *Daemon) logPath() string { return filepath.Join(d.Dir, "containerd.log") }

// OutputFile is where the stdout and stderr of detached container id go.
func (d *Daemon) OutputFile(id string) string {
	return filepath.Join(d.Dir, "output", id+".log")
}

// CgroupPath returns container id's cgroup, relative to a hierarchy root
// (ctr's default: /<namespace>/<id>); see cgroupV1Path.
func (d *Daemon) CgroupPath(id string) string {
	return "/" + d.Namespace + "/" + id
}

func (d *Daemon) cleanup(t testing.TB) {
	errs := teardown(d.Dir, d.proc)
	if d.proc != nil {
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("containerd was not reaped"))
		}
	}
	for _, err := range errs {
		t.Errorf("cleanup: %v", err)
	}
	if t.Failed() {
		if b, err := os.ReadFile(d.logPath()); err == nil {
			t.Logf("containerd log (%s):\n%s", d.logPath(), b)
		}
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// Ctr runs ctr against the daemon in its namespace, with a 60s timeout.
// stderr comes without ctr's cgroup v1 deprecation warning; err, when ctr
// fails, wraps the *exec.ExitError and quotes stderr.
func (d *Daemon) Ctr(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	return runCtr(ctx, d.Address, d.Namespace, args...)
}

// MustCtr is Ctr that fails the test on error and returns stdout.
func (d *Daemon) MustCtr(t testing.TB, args ...string) string {
	t.Helper()
	stdout, _, err := d.Ctr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout
}

func runCtr(ctx context.Context, address, ns string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(containerdDir, "ctr"),
		append([]string{"--address", address, "--namespace", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	errOut := withoutCtrWarnings(stderr.String())
	if err != nil {
		err = fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut))
	}
	return stdout.String(), errOut, err
}

// withoutCtrWarnings drops the cgroup v1 deprecation warning ctr logs on
// every call here.
func withoutCtrWarnings(s string) string {
	lines := strings.SplitAfter(s, "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool {
		return strings.Contains(l, "The support for cgroup v1 is deprecated")
	})
	return strings.Join(lines, "")
}

// RunOpts describes a container for Daemon.Run. Its rootfs is RTSHIM_ROOTFS.
type RunOpts struct {
	ID          string            // container id; default run-<n>
	Runtime     string            // default io.containerd.rt.v2 (rtRuntime); stockRuntime for the control
	ConfigPath  string            // --runtime-config-path (ctr ignores it for io.containerd.runc.v2)
	Annotations map[string]string // OCI annotations (--annotation k=v)
	Env         []string          // extra environment, "K=V"
	Privileged  bool              // --privileged: all capabilities, host devices
	CPUQuota    int64             // linux.resources.cpu.quota in µs (--cpu-quota); 0: unset
	CPUPeriod   int64             // linux.resources.cpu.period in µs (--cpu-period); 0: unset
	Detach      bool              // return once started; output goes to d.OutputFile(ID)
	Args        []string          // the process: path in the rootfs and arguments
}

// Run runs a container with ctr run (--rm unless Detach) and returns its
// combined stdout and stderr (with ctr's, less its cgroup v1 warning) and
// exit status. err is set when ctr itself failed (the container could not
// be created or started: err quotes ctr's message) or timed out (60s).
func (d *Daemon) Run(t testing.TB, o RunOpts) (out string, exitCode int, err error) {
	t.Helper()
	if o.ID == "" {
		o.ID = fmt.Sprintf("run-%d", d.runs.Add(1))
	}
	if o.Runtime == "" {
		o.Runtime = rtRuntime
	}
	args := []string{"run", "--runtime", o.Runtime}
	if o.Detach {
		args = append(args, "--detach", "--log-uri", "file://"+d.OutputFile(o.ID))
	} else {
		args = append(args, "--rm", "--fifo-dir", filepath.Join(d.Dir, "fifo"))
	}
	if o.ConfigPath != "" {
		args = append(args, "--runtime-config-path", o.ConfigPath)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Annotations)) {
		args = append(args, "--annotation", k+"="+o.Annotations[k])
	}
	for _, e := range o.Env {
		args = append(args, "--env", e)
	}
	if o.Privileged {
		args = append(args, "--privileged")
	}
	if o.CPUQuota != 0 {
		args = append(args, "--cpu-quota", strconv.FormatInt(o.CPUQuota, 10))
	}
	if o.CPUPeriod != 0 {
		args = append(args, "--cpu-period", strconv.FormatInt(o.CPUPeriod, 10))
	}
	args = append(append(args, "--rootfs", rootfsDir, o.ID), o.Args...)

	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	var combined bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(containerdDir, "ctr"),
		append([]string{"--address", d.Address, "--namespace", d.Namespace}, args...)...)
	cmd.Stdout, cmd.Stderr = &combined, &combined
	runErr := cmd.Run()
	out = withoutCtrWarnings(combined.String())

	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
		return out, 0, nil
	case ctx.Err() != nil:
		return out, -1, fmt.Errorf("ctr run %s: timed out after %v; output:\n%s", o.ID, ctrTimeout, out)
	case errors.As(runErr, &exitErr):
		code := exitErr.ExitCode()
		// ctr's own failures end in "ctr: <error>" and status 1; the
		// container's status is passed through silently.
		for line := range strings.Lines(out) {
			if msg, ok := strings.CutPrefix(line, "ctr: "); ok {
				return out, code, fmt.Errorf("ctr run %s: %s", o.ID, strings.TrimSpace(msg))
			}
		}
		return out, code, nil
	default:
		return out, -1, fmt.Errorf("ctr run %s: %w", o.ID, runErr)
	}
}

// The smoke tests prove the framework with the stock runc shim only.

func TestSmokeStockRuntime(t *testing.T) {
	requireRoot(t)
	d := startContainerd(t)

	t.Run("policy", func(t *testing.T) {
		out, code, err := d.Run(t, RunOpts{Runtime: stockRuntime, Args: []string{"/bin/schedinfo"}})
		if err != nil || code != 0 {
			t.Fatalf("exit %d, %v; output:\n%s", code, err, out)
		}
		if !strings.HasPrefix(out, "policy=SCHED_OTHER ") {
			t.Errorf("want policy=SCHED_OTHER, got:\n%s", out)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		out, code, err := d.Run(t, RunOpts{Runtime: stockRuntime, Args: []string{"/bin/sh", "-c", "exit 3"}})
		if err != nil || code != 3 {
			t.Fatalf("want exit 3, got %d, %v; output:\n%s", code, err, out)
		}
	})
	t.Run("ctr error", func(t *testing.T) {
		out, _, err := d.Run(t, RunOpts{Runtime: stockRuntime, Args: []string{"/bin/no-such-program"}})
		if err == nil {
			t.Fatalf("want an error from ctr, got none; output:\n%s", out)
		}
		t.Logf("as expected: %v", err)
	})
	t.Run("removed", func(t *testing.T) {
		if out := d.MustCtr(t, "containers", "ls", "-q"); out != "" {
			t.Errorf("containers left after ctr run --rm: %s", out)
		}
	})
}

// TestSmokeNoRTBudget is the control for the rt shim: with the stock runtime
// even a privileged container cannot switch to SCHED_FIFO on a cgroup v1 host
// with RT group scheduling, because its new cgroup has no RT budget.
func TestSmokeNoRTBudget(t *testing.T) {
	requireRoot(t)
	rtGroupSched := exists(cgroupV1Path("cpu", "cpu.rt_runtime_us"))
	d := startContainerd(t)

	out, code, err := d.Run(t, RunOpts{
		Runtime:    stockRuntime,
		Privileged: true,
		Args:       []string{"/bin/schedinfo", "-set", "fifo", "10"},
	})
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; output:\n%s", code, err, out)
	}
	want := "set=ok"
	if rtGroupSched {
		want = "set=error:Operation not permitted"
	}
	if !strings.Contains(out, want+"\n") {
		t.Errorf("rt group scheduling %v: want %q, got:\n%s", rtGroupSched, want, out)
	}

	if !rtGroupSched {
		return
	}
	_, _, err = d.Run(t, RunOpts{ID: "idle", Runtime: stockRuntime, Detach: true, Args: []string{"/bin/sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readCgroupInt(t, cgroupV1Path("cpu", d.CgroupPath("idle"))+"/cpu.rt_runtime_us"); got != 0 {
		t.Errorf("stock runtime: container cgroup cpu.rt_runtime_us = %d, want 0", got)
	}
}

// TestSmokeCleanup checks that a daemon's cleanup leaves nothing behind, also
// when the daemon and its shims were killed under running containers.
func TestSmokeCleanup(t *testing.T) {
	requireRoot(t)
	for _, crash := range []bool{false, true} {
		before := snapshotCPUTree(t)
		var d *Daemon
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			d = startContainerd(t)
			_, _, err := d.Run(t, RunOpts{
				ID:      "sleeper",
				Runtime: stockRuntime,
				Detach:  true,
				Args:    []string{"/bin/schedinfo", "-sleep", "300"},
			})
			if err != nil {
				t.Fatal(err)
			}
			waitForFile(t, d.OutputFile("sleeper"), "policy=SCHED_OTHER")
			if crash {
				pids := processesUnder(d.Dir)
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				for _, pid := range pids {
					for processAlive(pid) {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
		})
		if diff := diffCPUTree(before, snapshotCPUTree(t)); len(diff) > 0 {
			t.Errorf("cpu cgroup tree changed:\n%s", strings.Join(diff, "\n"))
		}
		if d == nil {
			continue
		}
		if exists(d.Dir) {
			t.Errorf("%s left behind", d.Dir)
		}
		if pids := processesUnder(d.Dir); len(pids) > 0 {
			t.Errorf("processes left behind: %v", pids)
		}
		if dirs, err := cgroupTree(d.CgroupPath("")); err != nil || len(dirs) > 0 {
			t.Errorf("cgroups left behind: %v %v", dirs, err)
		}
		if p := filepath.Join(runContainerdDir, "runc", d.Namespace); exists(p) {
			t.Errorf("%s left behind", p)
		}
	}
}

// waitForFile waits up to 10s for path to contain want.
func waitForFile(t testing.TB, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %q within 10s, got:\n%s", path, want, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
