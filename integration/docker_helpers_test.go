//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// The files in contrib/docker that TestDocker loads, so that they cannot rot.
const (
	contribDockerPath = "../contrib/docker/daemon.json"      // "path": runc-rt, any Docker
	contribDockerShim = "../contrib/docker/daemon-shim.json" // "runtimeType": the shim, Docker >= 24 on containerd 2.x
)

// dockerDaemonJSON is what contrib/docker's files may hold, decoded strictly: a field the test
// does not know would go untested, so it fails the test.
type dockerDaemonJSON struct {
	Runtimes map[string]struct {
		Path        string `json:"path,omitempty"`
		RuntimeType string `json:"runtimeType,omitempty"`
		// Options of a runtimeType runtime: Docker sends them to the shim as
		// runtimeoptions.v1.Options, of which it fills only ConfigPath.
		Options *struct {
			ConfigPath string `json:"ConfigPath"`
		} `json:"options,omitempty"`
	} `json:"runtimes"`
}

func loadDockerContrib(t testing.TB, path string) dockerDaemonJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c dockerDaemonJSON
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, ok := c.Runtimes["rt"]; !ok || len(c.Runtimes) != 1 {
		t.Fatalf("%s: want exactly one runtime, \"rt\": %+v", path, c.Runtimes)
	}
	return c
}

// daemonConfig is c as a daemon.json for startDockerd, with the settings in extra added.
func (c dockerDaemonJSON) daemonConfig(t testing.TB, extra map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	maps.Copy(m, extra)
	return m
}

// Dockerd is a private dockerd started by startDockerd: its data root, exec root, pid file,
// API socket and log are under Dir (inside its containerd's dir), and it uses that containerd.
type Dockerd struct {
	Dir    string
	Socket string
	cli    string // the docker CLI that drives it
	proc   *os.Process
	exited chan struct{}
	// args and env start the daemon (again, for Restart).
	args, env []string
}

// requireDockerd returns the dockerd binary, or skips.
func requireDockerd(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd not found: install docker.io (hack/install-deps.sh does)")
	}
	return p
}

// startDockerd starts dockerd with daemon.json config (written to its dir) against containerd
// d, in d's namespace, and drives it with the docker CLI cli: no iptables, no bridge, no IP
// forwarding (the host's network settings are left alone), the cgroupfs driver with the
// containers' cgroups under /<d.Namespace>/docker (which d's cleanup removes, whatever
// happens), and nothing written outside d.Dir. t.Cleanup removes every container, stops the
// daemon and logs its log if t failed.
func startDockerd(t testing.TB, d *harness.Daemon, dockerd, cli string, config map[string]any) *Dockerd {
	t.Helper()
	k := &Dockerd{Dir: filepath.Join(d.Dir, "docker"), cli: cli}
	k.Socket = filepath.Join(k.Dir, "docker.sock")
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	configPath := writeFile(t, k.Dir, "daemon.json", string(b))
	if err := os.MkdirAll(filepath.Join(k.Dir, "cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	host := snapshotHost(d.Dir)

	k.args = []string{dockerd,
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
	// The default runtime's "runc" is found on the PATH of containerd (and so of its shims),
	// which startContainerd set; dockerd's own PATH only serves `docker info`.
	k.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "PATH=")
	}), "PATH="+env.ToolsDir+":"+os.Getenv("PATH"))
	t.Cleanup(func() { k.cleanup(t, host) })
	k.launch(t)
	return k
}

// launch starts dockerd (its log appended to) and waits until it serves.
func (k *Dockerd) launch(t testing.TB) {
	t.Helper()
	logFile, err := os.OpenFile(filepath.Join(k.Dir, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
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

	deadline := time.Now().Add(env.Timeouts.Start)
	for {
		select {
		case <-exited:
			t.Fatalf("dockerd exited during start: %v", cmd.ProcessState)
		default:
		}
		if harness.Serving(k.Socket) {
			if _, _, err := k.Docker(t, "version"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd did not serve on %s within %v", k.Socket, env.Timeouts.Start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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

// dockerdMajor is dockerd's major version ("Docker version 20.10.24+dfsg1, build 5d6db84").
func dockerdMajor(t testing.TB, dockerd string) int {
	t.Helper()
	out, err := exec.Command(dockerd, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", dockerd, err)
	}
	v, _ := strings.CutPrefix(strings.TrimSpace(string(out)), "Docker version ")
	major, err := strconv.Atoi(strings.Split(v, ".")[0])
	if err != nil {
		t.Fatalf("%s --version: no version in %q", dockerd, out)
	}
	return major
}

// dockerCLI picks the docker CLI installed with dockerd (Debian: /usr/sbin/dockerd,
// /usr/bin/docker), before any other docker on PATH.
func dockerCLI(dockerd string) string {
	for _, p := range []string{
		filepath.Join(filepath.Dir(dockerd), "docker"),
		filepath.Join(filepath.Dir(filepath.Dir(dockerd)), "bin", "docker"),
	} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return "docker"
}

func (k *Dockerd) cleanup(t testing.TB, before hostState) {
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
	for _, d := range before.diff(snapshotHost(filepath.Dir(k.Dir))) {
		t.Errorf("dockerd changed the host: %s", d)
	}
	if t.Failed() {
		if b, err := os.ReadFile(filepath.Join(k.Dir, "dockerd.log")); err == nil {
			t.Logf("dockerd log:\n%s", b)
		}
	}
}

func (k *Dockerd) serves() bool {
	select {
	case <-k.exited:
		return false
	default:
		return harness.Serving(k.Socket)
	}
}

// Docker runs the docker CLI against the daemon, with a 60s timeout and its own config dir
// (nothing in ~/.docker). err, when docker fails, quotes its stderr.
func (k *Dockerd) Docker(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_") }),
		"DOCKER_HOST=unix://"+k.Socket, "DOCKER_CONFIG="+filepath.Join(k.Dir, "cli"))
	return runTool(env, "docker", []string{k.cli}, args)
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

// importRootfs makes image dockerImage from the test rootfs with `docker import`.
func (k *Dockerd) importRootfs(t testing.TB) {
	t.Helper()
	tarball := filepath.Join(k.Dir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", env.Rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v\n%s", env.Rootfs, err, out)
	}
	k.MustDocker(t, "import", tarball, dockerImage)
	if err := os.Remove(tarball); err != nil {
		t.Fatal(err)
	}
}

// claimsNaming lists rtshim's claims and runc-rt's records whose name holds id.
func claimsNaming(t testing.TB, id string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"claims", "wrapper"} {
		ents, err := os.ReadDir(filepath.Join(harness.StateDir, dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), id) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// procSched is process pid's scheduling policy (0 SCHED_OTHER, 1 SCHED_FIFO, ...) and RT
// priority, from /proc/<pid>/stat (fields 41 and 40).
func procSched(t testing.TB, pid int) (policy, priority int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (in parentheses) start with the state, field 3.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 39 {
		t.Fatalf("/proc/%d/stat: %s", pid, b)
	}
	priority, _ = strconv.Atoi(f[40-3])
	policy, _ = strconv.Atoi(f[41-3])
	return policy, priority
}

// engineCLI is docker or podman as a test drives it: cli runs a command and fails the test on
// error.
type engineCLI struct {
	name string
	cli  func(t testing.TB, args ...string) string
}

// checkRTContainer checks a running container the engine started with FIFO 70 through runc-rt
// (or the rt shim) and /bin/schedinfo -sleep: its cgroup, its budget and claim, the exec policy
// and its own policy; then removes it with rm and checks that rtshim's state went with it.
func checkRTContainer(t *testing.T, e engineCLI, id, wantCgroup string, rm ...string) {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(e.cli(t, "inspect", "-f", "{{.State.Pid}}", id)))
	if err != nil || pid <= 0 {
		t.Fatalf("%s inspect %s: pid %d, %v", e.name, id, pid, err)
	}
	cg := harness.CPUCgroupOf(t, pid)
	if cg != wantCgroup {
		t.Errorf("container cgroup %s, want %s (%s --cgroup-parent)", cg, wantCgroup, e.name)
	}
	if harness.RTGroupSched() {
		if got := harness.ReadInt(t, filepath.Join(harness.CPUV1(cg), "cpu.rt_runtime_us")); got != 100000 {
			t.Errorf("cpu.rt_runtime_us of %s while running: %d, want 100000", cg, got)
		}
		if len(claimsNaming(t, id)) == 0 {
			t.Errorf("no rtshim claim of container %s while it runs", id)
		}
	}
	if s := harness.ParseSched(t, e.cli(t, "exec", id, "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
		t.Errorf("%s exec: %v, want SCHED_OTHER (the exec policy)", e.name, s)
	}
	if s := harness.ParseSched(t, e.cli(t, "logs", id)); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
		t.Errorf("%s run -d with the RT runtime: %v, want SCHED_FIFO 70", e.name, s)
	}
	e.cli(t, append(rm, id)...)
	if c := claimsNaming(t, id); len(c) > 0 {
		t.Errorf("after %s %s: rtshim state left in %s: %v", e.name, strings.Join(rm, " "), harness.StateDir, c)
	}
}
