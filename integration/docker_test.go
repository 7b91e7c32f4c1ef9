//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/internal/harness"
)

// dockerImage is the image TestDocker imports from the test rootfs.
const dockerImage = "rtshim-test:latest"

// TestDocker runs Debian's dockerd (20.10) against the test's containerd with
// contrib/docker/daemon.json, runc-rt as the path runtime "rt": `docker run --runtime=rt -e
// RTSHIM_POLICY=SCHED_FIFO` starts the program SCHED_FIFO, a running container holds its
// budget, `docker exec` gets the exec policy, and `docker rm -f` gives the budget back. The
// runtimeType form (contrib/docker/daemon-shim.json) needs Docker >= 24 on containerd 2.x,
// which Debian does not ship: its options are checked, and sent to the shim as Docker sends
// them.
func TestDocker(t *testing.T) {
	env.RequireRoot(t)
	dockerd := requireDockerd(t)
	pathForm, shimForm := loadDockerContrib(t, contribDockerPath), loadDockerContrib(t, contribDockerShim)
	if p := pathForm.Runtimes["rt"].Path; p != "/usr/local/bin/runc-rt" {
		t.Errorf("%s: path %q, want /usr/local/bin/runc-rt (where make install puts runc-rt)", contribDockerPath, p)
	}
	shim := shimForm.Runtimes["rt"]
	if shim.RuntimeType != harness.RTRuntime || shim.Options == nil || shim.Options.ConfigPath != config.DefaultPath {
		t.Errorf("%s: %+v, want runtimeType %s with options.ConfigPath %s", contribDockerShim, shim, harness.RTRuntime, config.DefaultPath)
	}

	// The shims inherit containerd's environment, not dockerd's: that is where runc-rt
	// learns which runc is the real one, and its config. Docker 20.10 cannot set annotations,
	// so its users ask with `docker run -e RTSHIM_...`, which the operator must allow
	// (honor_env, as the suite's config does).
	d := env.StartContainerd(t, harness.Options{Env: []string{"RTSHIM_RUNC=" + env.Runc}})
	before := harness.SnapshotCPUTree(t)

	// contrib's path form with runc-rt's path here. dockerd < 24 would otherwise write
	// /etc/docker/key.json (a setting only daemon.json has, and newer ones refuse).
	rt := pathForm.Runtimes["rt"]
	rt.Path = filepath.Join(env.BinDir, "runc-rt")
	pathForm.Runtimes["rt"] = rt
	extra := map[string]any{}
	if dockerdMajor(t, dockerd) < 24 {
		extra["deprecated-key-path"] = filepath.Join(d.Dir, "docker", "key.json")
	}
	k := startDockerd(t, d, dockerd, dockerCLI(dockerd), pathForm.daemonConfig(t, extra))
	importRootfs(t, k)
	env := []string{"-e", "RTSHIM_POLICY=SCHED_FIFO", "-e", "RTSHIM_PRIORITY=70"}
	run := func(args ...string) []string {
		return append(append([]string{"run", "--network", "none"}, args...), env...)
	}

	t.Run("rt runtime", func(t *testing.T) {
		out, stderr, err := k.Docker(t, append(run("--rm", "--runtime=rt"), dockerImage, "/bin/schedinfo")...)
		if err != nil {
			t.Fatal(err)
		}
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("docker run --runtime=rt: %v, want SCHED_FIFO 70", s)
		}
		// The runc shim runs `runc-rt create` with the container's stdio: whatever runc-rt
		// wrote to stderr there would be the container's (docker logs).
		if stderr != "" {
			t.Errorf("runc-rt wrote into the container's stderr: %s", stderr)
		}
	})
	t.Run("default runtime", func(t *testing.T) {
		out := k.MustDocker(t, append(run("--rm"), dockerImage, "/bin/schedinfo")...)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("docker run with the default runtime: %v, want SCHED_OTHER", s)
		}
	})
	t.Run("refused", func(t *testing.T) {
		_, stderr, err := k.Docker(t, "run", "--rm", "--network", "none", "--runtime=rt",
			"-e", "RTSHIM_POLICY=SCHED_FIFO", "-e", "RTSHIM_PRIORITY=150", dockerImage, "/bin/true")
		if err == nil || !strings.Contains(stderr, `RTSHIM_PRIORITY="150"`) {
			t.Errorf("priority 150: want docker run to fail naming RTSHIM_PRIORITY, got %v", err)
		}
		t.Logf("as expected: %s", strings.TrimSpace(stderr))
	})
	t.Run("budget", func(t *testing.T) {
		id := strings.TrimSpace(k.MustDocker(t, append(run("-d", "--runtime=rt"), dockerImage, "/bin/schedinfo", "-sleep", "300")...))
		checkRTContainer(t, engineCLI{"docker", k.MustDocker}, id, "/"+d.Namespace+"/docker/"+id, "rm", "-f")
		d.AssertRestored(t, before)
	})
	t.Run("stop", func(t *testing.T) {
		// dockerd deletes a container's task when it stops: the budget goes back then,
		// and `docker start` claims it again.
		id := strings.TrimSpace(k.MustDocker(t, append(run("-d", "--runtime=rt"), dockerImage, "/bin/schedinfo", "-sleep", "300")...))
		k.MustDocker(t, "stop", "-t", "0", id)
		if c := claimsNaming(t, id); len(c) > 0 {
			t.Errorf("after docker stop: rtshim state left in %s: %v", harness.StateDir, c)
		}
		d.AssertRestored(t, before)
		k.MustDocker(t, "start", id)
		pid, err := strconv.Atoi(strings.TrimSpace(k.MustDocker(t, "inspect", "-f", "{{.State.Pid}}", id)))
		if err != nil || pid <= 0 {
			t.Fatalf("docker inspect %s: pid %d, %v", id, pid, err)
		}
		if policy, prio := procSched(t, pid); policy != 1 || prio != 70 {
			t.Errorf("after docker start: policy %d priority %d, want 1 (SCHED_FIFO) 70", policy, prio)
		}
		k.MustDocker(t, "rm", "-f", id)
		d.AssertRestored(t, before)
	})
	t.Run("runtimeType options", func(t *testing.T) {
		// What Docker >= 24 does with daemon-shim.json: start the shim by its runtime type
		// and send runtimeoptions with ConfigPath (here a copy of contrib/rtshim.toml, which
		// make install puts at the ConfigPath named there). ctr's --runtime-config-path
		// sends the same message.
		conf, err := os.ReadFile(contribRtshim)
		if err != nil {
			t.Fatal(err)
		}
		out := d.MustRun(t, harness.RunOpts{
			Runtime:     shim.RuntimeType,
			ConfigPath:  writeFile(t, d.Dir, "rtshim.toml", string(conf)),
			Annotations: map[string]string{"rtshim.io/policy": "SCHED_FIFO", "rtshim.io/priority": "70"},
			Args:        []string{"/bin/schedinfo"},
		})

		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("%s with ConfigPath: %v, want SCHED_FIFO 70", shim.RuntimeType, s)
		}
	})
	d.AssertRestored(t, before)
}
