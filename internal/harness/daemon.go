//go:build linux

package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Daemon is a private containerd: its own root, state, sockets and containerd namespace, all
// under Dir.
type Daemon struct {
	// Namespace is the containerd namespace Ctr and Run use, unique to this daemon on the
	// host; ctr puts a container's cgroup at /<Namespace>/<id>.
	Namespace string
	// Address is the daemon's gRPC socket.
	Address string
	// Dir holds everything of the daemon: config.toml, containerd.log, root/, state/,
	// output/ (detached containers' stdout and stderr).
	Dir string

	env         *Env
	snapshotter string // Options.Snapshotter
	proc        *os.Process
	exited      chan struct{}
	runs        atomic.Int64
	// args and env start the daemon process (again, for Restart).
	args, environ []string
}

// Options are the less common ways to start a daemon.
type Options struct {
	// TOML is appended to the generated config; it must not repeat its tables.
	TOML []string
	// PathDir is put first in the daemon's PATH, e.g. to make a name resolve to another shim.
	PathDir string
	// Env is added to the daemon's environment (which its shims inherit). Without an
	// RTSHIM_CONFIG there, the daemon's shims get Env.ShimConfig, if any.
	Env []string
	// CRI keeps containerd's CRI plugins and the pod sandbox controller, which the generated
	// config disables; the caller configures them in TOML.
	CRI bool
	// NRI enables containerd's NRI, with its socket and plugin directory in Dir, and
	// installs these plugin binaries there: containerd starts them as 10-<name>, 11-<name>,
	// ... and they end with it. NRI only sees CRI containers: it goes with CRI.
	NRI []string
	// Snapshotter is CRI's snapshotter and the one ImportImages unpacks for, when not
	// containerd's default (overlayfs): "native" where the kernel has no overlay (the VM).
	Snapshotter string
	// Dir and Namespace, for a daemon that is alone on its machine (vmtest's); by default a
	// new temp dir under /tmp (socket paths have a 108-byte limit) whose name, unique to
	// this run, is the namespace.
	Dir, Namespace string
}

// Files in a daemon's dir.
const (
	ownerFile  = "owner.pid"       // pid of the test binary that owns the dir (see SweepStale)
	socketName = "containerd.sock" // the daemon's gRPC socket
	logName    = "containerd.log"  // the daemon's log, with its shims'
	bundlesDir = "state/io.containerd.runtime.v2.task"
)

// StartContainerd starts a private containerd for t and waits until it serves. Its PATH
// starts with o.PathDir, the runc under test (as "runc"), BinDir, ContainerdDir and ToolsDir,
// so it finds containerd-shim-rt-v2, containerd-shim-runc-v2 and runc there.
//
// t.Cleanup deletes every task and container, stops the daemon and kills its shims and
// anything left in its containers' cgroups, unmounts, removes the cgroups and the dir, and
// logs the daemon's log if t failed.
func (e *Env) StartContainerd(t testing.TB, o Options) *Daemon {
	t.Helper()
	e.RequireRoot(t)
	d, err := e.LaunchContainerd(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		errs := d.stop()
		if t.Failed() {
			if b, err := os.ReadFile(d.LogPath()); err == nil {
				t.Logf("containerd log (%s):\n%s", d.LogPath(), b)
			}
		}
		if err := os.RemoveAll(d.Dir); err != nil {
			errs = append(errs, err)
		}
		for _, err := range errs {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

// LaunchContainerd is StartContainerd for a daemon that outlives a test (vmtest's: one per VM
// boot, as a daemon takes seconds to start under emulation); Close tears it down. When the
// daemon does not come up, the error quotes the end of its log and nothing is left.
func (e *Env) LaunchContainerd(o Options) (*Daemon, error) {
	dir := o.Dir
	var err error
	if dir == "" {
		dir, err = NewRunDir()
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return nil, err
	}
	d := &Daemon{Namespace: o.Namespace, Address: filepath.Join(dir, socketName), Dir: dir, env: e, snapshotter: o.Snapshotter}
	if d.Namespace == "" {
		d.Namespace = filepath.Base(dir)
	}
	if err := d.setUp(o); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	if err := d.launch(); err != nil {
		err = fmt.Errorf("%w; containerd log (last lines):\n%s", err, d.LogTail(50))
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// setUp writes the daemon's owner file (a fixed Dir has none yet) and config, and builds its command line and
// environment.
func (d *Daemon) setUp(o Options) error {
	if err := writeOwner(d.Dir); err != nil {
		return err
	}
	configPath := filepath.Join(d.Dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(configFor(d.Dir, d.env.ContainerdVersion, o.CRI, len(o.NRI) > 0, o.TOML)), 0o644); err != nil {
		return err
	}
	if err := installNRIPlugins(filepath.Join(d.Dir, nriPluginDir), o.NRI); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(d.Dir, "output"), 0o755); err != nil {
		return err
	}
	path := []string{o.PathDir}
	if d.env.Runc != filepath.Join(d.env.ToolsDir, "runc") {
		// The shims run "runc" from PATH: give them the runc under test by that name.
		runcDir := filepath.Join(d.Dir, "runc-bin")
		if err := os.Mkdir(runcDir, 0o755); err != nil {
			return err
		}
		if err := os.Symlink(d.env.Runc, filepath.Join(runcDir, "runc")); err != nil {
			return err
		}
		path = append(path, runcDir)
	}
	path = append(path, d.env.BinDir, d.env.ContainerdDir, d.env.ToolsDir, os.Getenv("PATH"))
	path = slices.DeleteFunc(slices.Compact(path), func(p string) bool { return p == "" })
	d.args = []string{filepath.Join(d.env.ContainerdDir, "containerd"), "--config", configPath}
	d.environ = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=")
	}), "PATH="+strings.Join(path, ":"))
	d.environ = append(d.environ, o.Env...)
	if d.env.ShimConfig != "" && !slices.ContainsFunc(o.Env, func(kv string) bool { return strings.HasPrefix(kv, "RTSHIM_CONFIG=") }) {
		p := filepath.Join(d.Dir, "rtshim-suite.toml")
		if err := os.WriteFile(p, []byte(d.env.ShimConfig), 0o644); err != nil {
			return err
		}
		d.environ = append(d.environ, "RTSHIM_CONFIG="+p)
	}
	return nil
}

// launch starts the daemon process and waits until it serves; the log is appended to.
func (d *Daemon) launch() error {
	logFile, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Env = d.environ
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies without its cleanups (go test -timeout), take the daemon along;
	// the next run's SweepStale removes the rest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	d.proc, d.exited = cmd.Process, exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	timeout := d.env.Timeouts.Start
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("containerd exited during start: %v", cmd.ProcessState)
		default:
		}
		if Serving(d.Address) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _, err := d.CtrContext(ctx, "", "version")
			cancel()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not serve on %s within %v", d.Address, timeout)
		}
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
	if err := d.launch(); err != nil {
		t.Fatal(err)
	}
}

// Close tears the daemon down (see StartContainerd) and removes its dir.
func (d *Daemon) Close() error {
	errs := d.stop()
	if err := os.RemoveAll(d.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stop undoes everything the daemon made but its dir, and waits until the daemon process is
// reaped.
func (d *Daemon) stop() []error {
	errs := teardown(filepath.Join(d.env.ContainerdDir, "ctr"), d.Dir, d.Namespace, d.proc)
	if d.proc != nil {
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("containerd was not reaped"))
		}
	}
	return errs
}

// LogPath is the daemon's log (the shims log there too).
func (d *Daemon) LogPath() string { return filepath.Join(d.Dir, logName) }

// LogTail is the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.LogPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Env is what the daemon runs.
func (d *Daemon) Env() *Env { return d.env }

// OutputFile is where the stdout and stderr of detached container id go.
func (d *Daemon) OutputFile(id string) string {
	return filepath.Join(d.Dir, "output", id+".log")
}

// CgroupPath returns container id's cgroup, relative to a hierarchy root (ctr's default:
// /<namespace>/<id>); "" gives the namespace's.
func (d *Daemon) CgroupPath(id string) string {
	if id == "" {
		return "/" + d.Namespace
	}
	return "/" + d.Namespace + "/" + id
}

// installNRIPlugins links each plugin binary into dir under the name containerd starts
// pre-installed NRI plugins by: an index, a dash, a name.
func installNRIPlugins(dir string, plugins []string) error {
	for i, p := range plugins {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Symlink(p, filepath.Join(dir, fmt.Sprintf("%02d-%s", 10+i, filepath.Base(p)))); err != nil {
			return fmt.Errorf("install NRI plugin: %w", err)
		}
	}
	return nil
}
