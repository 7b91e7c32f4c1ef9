//go:build linux

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dockerd is a private dockerd started by Env.StartDockerd: its data root, exec root, pid
// file, API socket and log are under Dir (inside its containerd's dir), and it uses that
// containerd. The integration tests (Docker 20.10, 28, 29) and the benchmarks (Docker's RT
// route against rtshim) share it.
type Dockerd struct {
	Dir     string
	Socket  string
	cli     string        // the docker CLI that drives it
	ctrTO   time.Duration // Docker's timeout: the env's ctr timeout
	startTO time.Duration // how long it may take to serve
	proc    *os.Process
	exited  chan struct{}
	// args and env start the daemon (again, for Start); base is args without
	// DockerdOptions.Args (for Restart).
	args, base, env []string
}

// DockerdOptions say which dockerd to start and how.
type DockerdOptions struct {
	// Dockerd and CLI are the daemon's and the docker CLI's binaries.
	Dockerd, CLI string
	// Config is the daemon.json (runtimes, ...), written to the daemon's dir.
	Config map[string]any
	// Args are more daemon flags, e.g. --cpu-rt-runtime=N.
	Args []string
}

// StartDockerd starts dockerd with o.Config against containerd d, in d's namespace, and drives
// it with o.CLI: no iptables, no bridge, no IP forwarding (the host's network settings are left
// alone), the cgroupfs driver with the containers' cgroups under /<d.Namespace>/docker (which
// d's cleanup removes, whatever happens: dockerd's --cpu-rt-runtime writes the RT budget of
// /<d.Namespace> and of that parent, never of the root), and nothing written outside d.Dir.
// t.Cleanup removes every container, stops the daemon, fails t if the host changed (see
// SnapshotDockerHost) and logs the daemon's log if t failed.
func (e *Env) StartDockerd(t testing.TB, d *Daemon, o DockerdOptions) *Dockerd {
	t.Helper()
	k := &Dockerd{Dir: filepath.Join(d.Dir, "docker"), cli: o.CLI, ctrTO: e.Timeouts.Ctr, startTO: e.Timeouts.Start}
	k.Socket = filepath.Join(k.Dir, "docker.sock")
	b, err := json.MarshalIndent(o.Config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(k.Dir, "daemon.json")
	if err := os.MkdirAll(filepath.Join(k.Dir, "cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	host := SnapshotDockerHost(d.Dir)

	k.base = []string{o.Dockerd,
		"--config-file", configPath,
		"--data-root", filepath.Join(k.Dir, "data"),
		"--exec-root", filepath.Join(k.Dir, "exec"),
		"--pidfile", filepath.Join(k.Dir, "dockerd.pid"),
		"-H", "unix://" + k.Socket,
		"--containerd", d.Address,
		// The namespace's runc state and claims are then d's, which its cleanup knows.
		"--containerd-namespace", d.Namespace, "--containerd-plugins-namespace", d.Namespace + "-plugins",
		"--cgroup-parent", "/" + d.Namespace + "/docker",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
	}
	k.args = append(slices.Clone(k.base), o.Args...)
	// The default runtime's "runc" is found on the PATH of containerd (and so of its shims),
	// which StartContainerd set; dockerd's own PATH only serves `docker info`.
	k.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "PATH=")
	}), "PATH="+e.ToolsDir+":"+os.Getenv("PATH"))
	t.Cleanup(func() { k.cleanup(t, host) })
	k.launch(t)
	return k
}

// launch starts dockerd (its log appended to) and waits until it serves.
func (k *Dockerd) launch(t testing.TB) {
	t.Helper()
	timeout := k.startTO
	logFile, err := os.OpenFile(k.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(k.args[0], k.args[1:]...)
	cmd.Env = k.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	k.proc, k.exited = cmd.Process, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			t.Fatalf("dockerd exited during start: %v", cmd.ProcessState)
		default:
		}
		if Serving(k.Socket) {
			if _, _, err := k.Docker(t, "version"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not serve on %s within %v", k.Socket, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogPath is the daemon's log.
func (k *Dockerd) LogPath() string { return filepath.Join(k.Dir, "dockerd.log") }

// Stop stops dockerd with SIGTERM, as a service manager does (without live-restore it stops
// its containers first); Start starts it again with the same configuration.
func (k *Dockerd) Stop(t testing.TB) {
	t.Helper()
	if err := k.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("dockerd did not stop within 60s of SIGTERM")
	}
}

// Start starts a stopped dockerd again (see Stop).
func (k *Dockerd) Start(t testing.TB) {
	t.Helper()
	k.launch(t)
}

// Restart stops dockerd and starts it again with the daemon flags args in place of
// DockerdOptions.Args: the same data root, images and containers, other flags (e.g.
// --cpu-rt-runtime, which dockerd reads only when it starts).
func (k *Dockerd) Restart(t testing.TB, args ...string) {
	t.Helper()
	k.Stop(t)
	k.args = append(slices.Clone(k.base), args...)
	k.launch(t)
}

func (k *Dockerd) cleanup(t testing.TB, before DockerHost) {
	if k.serves() {
		if ids, _, err := k.Docker(t, "ps", "-aq", "--no-trunc"); err == nil && strings.TrimSpace(ids) != "" {
			if _, _, err := k.Docker(t, append([]string{"rm", "-f"}, strings.Fields(ids)...)...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	if k.proc != nil {
		_ = k.proc.Signal(syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("cleanup: dockerd did not stop on SIGTERM within 20s")
			_ = k.proc.Kill()
			<-k.exited
		}
	}
	// dockerd's data root is a mount point of its own; the daemon's cleanup unmounts what
	// is left under its dir.
	if before["path /run/docker"] == "false" {
		_ = os.Remove("/run/docker/plugins")
		_ = os.Remove("/run/docker")
	}
	for _, d := range before.Diff(SnapshotDockerHost(filepath.Dir(k.Dir))) {
		t.Errorf("dockerd changed the host: %s", d)
	}
	if t.Failed() {
		if b, err := os.ReadFile(k.LogPath()); err == nil {
			t.Logf("dockerd log:\n%s", b)
		}
	}
}

func (k *Dockerd) serves() bool {
	select {
	case <-k.exited:
		return false
	default:
		return Serving(k.Socket)
	}
}

// Docker runs the docker CLI against the daemon, with the env's ctr timeout and its own config
// dir (nothing in ~/.docker). err, when docker fails, quotes its stderr.
func (k *Dockerd) Docker(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return k.DockerFor(k.ctrTO, args...)
}

// DockerFor is Docker with a timeout of its own, for a container run that takes longer.
func (k *Dockerd) DockerFor(timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	return DockerCLI(timeout, k.cli, k.Socket, filepath.Join(k.Dir, "cli"), args...)
}

// DockerCLI runs the docker CLI cli against the daemon at socket, with its own config
// directory and none of the caller's DOCKER_ variables, and returns its stdout and stderr.
func DockerCLI(timeout time.Duration, cli, socket, configDir string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	environ := append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_") }),
		"DOCKER_HOST=unix://"+socket, "DOCKER_CONFIG="+configDir)
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// MustDocker is Docker that fails the test on error and returns stdout.
func (k *Dockerd) MustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := k.Docker(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ImportRootfs makes image from the directory rootfs with `docker import`.
func (k *Dockerd) ImportRootfs(t testing.TB, rootfs, image string) {
	t.Helper()
	tarball := filepath.Join(k.Dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v\n%s", rootfs, err, out)
	}
	k.MustDocker(t, "import", tarball, image)
	if err := os.Remove(tarball); err != nil {
		t.Fatal(err)
	}
}
