//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestPodman runs Debian's podman (4.3) with runc-rt as its OCI runtime: `podman run --runtime
// runc-rt -e RTSHIM_POLICY=SCHED_FIFO` starts the program SCHED_FIFO, a running container holds
// its budget, `podman exec` gets the exec policy, and `podman rm -f` gives the budget back.
//
// Podman runs the runtime with almost no environment (`delete` with none at all: no PATH, no
// RTSHIM_RUNC), so runc-rt must find the real runc through the rtshim config's absolute
// runc.binary_name (docs/docker.md). That config is /etc/containerd/rtshim.toml, which a test
// must not write: the runtime podman runs here is a two-line script that points RTSHIM_CONFIG
// at a copy of contrib/rtshim.toml with binary_name set, then runs runc-rt.
func TestPodman(t *testing.T) {
	env.RequireRoot(t)
	p := startPodman(t)
	before := harness.SnapshotCPUTree(t)

	// Podman sets annotations (--annotation); with contrib/rtshim.toml's honor_env = false an
	// image's or the user's RTSHIM_ variables alone ask for nothing.
	fifo70 := []string{"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/priority=70"}
	t.Run("rt runtime", func(t *testing.T) {
		out := p.MustPodman(t, p.runArgs(p.runcRT, append(fifo70, "--rm"), "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("podman run --runtime runc-rt: %v, want SCHED_FIFO 70", s)
		}
	})
	t.Run("runc", func(t *testing.T) {
		out := p.MustPodman(t, p.runArgs(env.Runc, append(fifo70, "--rm"), "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("podman run --runtime runc: %v, want SCHED_OTHER", s)
		}
	})
	t.Run("refused", func(t *testing.T) {
		_, stderr, err := p.Podman(t, p.runArgs(p.runcRT,
			[]string{"--rm", "--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/priority=150"}, "/bin/true")...)
		if err == nil || !strings.Contains(stderr, `rtshim.io/priority="150"`) {
			t.Errorf("priority 150: want podman run to fail naming rtshim.io/priority, got %v", err)
		}
		t.Logf("as expected: %s", strings.TrimSpace(stderr))
	})
	t.Run("environment alone asks for nothing", func(t *testing.T) {
		out := p.MustPodman(t, p.runArgs(p.runcRT, []string{"--rm", "-e", "RTSHIM_POLICY=SCHED_FIFO", "-e", "RTSHIM_PRIORITY=99"}, "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("RTSHIM_ variables under contrib/rtshim.toml (honor_env = false): %v, want SCHED_OTHER", s)
		}
	})
	t.Run("budget", func(t *testing.T) {
		id := strings.TrimSpace(p.MustPodman(t, p.runArgs(p.runcRT, append(fifo70, "-d"), "/bin/schedinfo", "-sleep", "300")...))
		checkRTContainer(t, engineCLI{"podman", p.MustPodman}, id, "/"+p.Namespace+"/podman/libpod-"+id, "rm", "-f", "-t", "0")
	})
	if diff := harness.DiffCPUTree(before, withoutNewIdle(before, harness.SnapshotCPUTree(t))); len(diff) > 0 {
		t.Errorf("cpu cgroup tree not restored:\n%s", strings.Join(diff, "\n"))
	}
}

// Podman is a private podman setup: storage, run root, temp dir, locks, events and network
// config under Dir, the containers' cgroups under /<Namespace>/podman.
type Podman struct {
	Dir       string
	Namespace string // Dir's base name: the test prefix, so sweepStale cleans up after a killed run
	runcRT    string // the runtime podman runs: RTSHIM_CONFIG=... runc-rt
	env       []string
}

// podmanHostPaths are where podman writes by default; startPodman moves each elsewhere, and
// runs containers from the test rootfs (--rootfs) rather than an imported image: `podman
// import` writes a blob cache to /var/lib/containers/cache whatever --root says. runc's own
// default root, /run/runc, is the one path left: podman 4.3 does not pass --runtime-flag
// root=... to `runc delete`. The cleanup removes /run/runc when the test made it.
var podmanHostPaths = []string{"/var/lib/containers", "/run/containers", "/run/libpod", "/run/runc", "/etc/cni/net.d"}

// startPodman checks that podman and conmon are installed (or skips) and sets podman up in
// a temp dir; t.Cleanup removes its containers, and everything they left.
func startPodman(t testing.TB) *Podman {
	t.Helper()
	for _, bin := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err := os.Stat("/usr/libexec/podman/" + bin); err != nil {
				t.Skipf("%s not found: install podman (hack/install-deps.sh does)", bin)
			}
		}
	}
	dir, err := harness.NewRunDir()
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Dir: dir, Namespace: filepath.Base(dir)}
	existed := map[string]bool{}
	for _, path := range podmanHostPaths {
		existed[path] = harness.Exists(path)
	}
	t.Cleanup(func() { p.cleanup(t, existed) })

	conf, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	rtshimConf := strings.Replace(string(conf), `binary_name = "runc"`, "binary_name = "+strconv.Quote(env.Runc), 1)
	if rtshimConf == string(conf) {
		t.Fatalf("%s: no binary_name = \"runc\" to point at %s", contribRtshim, env.Runc)
	}
	confPath := writeFile(t, dir, "rtshim.toml", rtshimConf)
	p.runcRT = writeFile(t, dir, "bin/runc-rt", fmt.Sprintf("#!/bin/sh\nRTSHIM_CONFIG=%s exec %s \"$@\"\n", confPath, filepath.Join(env.BinDir, "runc-rt")))
	if err := os.Chmod(p.runcRT, 0o755); err != nil {
		t.Fatal(err)
	}
	containersConf := writeFile(t, dir, "containers.conf", fmt.Sprintf(`[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "%[1]s/tmp"
volume_path = "%[1]s/volumes"

[network]
network_config_dir = "%[1]s/net"
`, dir))
	storageConf := writeFile(t, dir, "storage.conf", fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = "%[1]s/root"
runroot = "%[1]s/run"
`, dir))
	p.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CONTAINERS_") || strings.HasPrefix(kv, "RTSHIM_")
	}), "CONTAINERS_CONF="+containersConf, "CONTAINERS_STORAGE_CONF="+storageConf)
	return p
}

// runArgs is `podman run` of command in the test rootfs with runtime and flags: no network; the cgroup under /<Namespace>/podman;
// the test rootfs under a private overlay (":O": nothing is written to it); rlimits within the
// host's hard limits (rootful podman asks for 1048576 open files and processes, which runc can
// only set with CAP_SYS_RESOURCE).
func (p *Podman) runArgs(runtime string, flags []string, command ...string) []string {
	args := []string{"--runtime", runtime, "run", "--network", "none",
		"--cgroup-parent", "/" + p.Namespace + "/podman",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	args = append(append(args, flags...), "--rootfs", env.Rootfs+":O")
	return append(args, command...)
}

// Podman runs podman with the private setup, with a 60s timeout. err, when podman fails,
// quotes its stderr.
func (p *Podman) Podman(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runTool(p.env, "podman", []string{"podman",
		"--root", filepath.Join(p.Dir, "root"), "--runroot", filepath.Join(p.Dir, "run"),
		"--tmpdir", filepath.Join(p.Dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}, args)
}

// MustPodman is Podman that fails the test on error and returns stdout.
func (p *Podman) MustPodman(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := p.Podman(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *Podman) cleanup(t testing.TB, existed map[string]bool) {
	if harness.Exists(filepath.Join(p.Dir, "root")) {
		if _, _, err := p.Podman(t, "--runtime", p.runcRT, "rm", "-a", "-f", "-t", "0"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	// conmon, containers' processes, podman's storage mounts and the cgroups under
	// /<Namespace>, as for a containerd's dir.
	for _, err := range harness.TeardownRunDir(p.Dir) {
		t.Errorf("cleanup: %v", err)
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if !existed["/run/runc"] {
		if err := os.Remove("/run/runc"); err != nil && !os.IsNotExist(err) {
			t.Errorf("cleanup: runc state left: %v", err)
		}
	}
	for _, path := range podmanHostPaths {
		if !existed[path] && harness.Exists(path) {
			t.Errorf("podman left %s on the host", path)
		}
	}
}

// withoutNewIdle drops from after the cgroups that before did not have and that hold no
// budget and no quota: the parents podman (or runc) creates and never removes.
func withoutNewIdle(before, after map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range after {
		if _, ok := before[k]; ok || (v != "0" && v != "-1") {
			out[k] = v
		}
	}
	return out
}
