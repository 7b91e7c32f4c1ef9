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
	"strconv"
	"strings"
	"testing"

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

// Dockerd is a private dockerd (harness.Env.StartDockerd).
type Dockerd = harness.Dockerd

// requireDockerd returns the dockerd binary, or skips.
func requireDockerd(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd not found: install docker.io (hack/install-deps.sh does)")
	}
	return p
}

// startDockerd starts dockerd with daemon.json config against containerd d, driven by the
// docker CLI cli (see harness.Env.StartDockerd).
func startDockerd(t testing.TB, d *harness.Daemon, dockerd, cli string, config map[string]any) *Dockerd {
	t.Helper()
	return env.StartDockerd(t, d, harness.DockerdOptions{Dockerd: dockerd, CLI: cli, Config: config})
}

// importRootfs makes image dockerImage from the test rootfs with `docker import`.
func importRootfs(t testing.TB, k *Dockerd) {
	t.Helper()
	k.ImportRootfs(t, env.Rootfs, dockerImage)
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
