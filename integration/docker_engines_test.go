//go:build linux && docker

package integration

// Docker as users run it today, built only with -tags docker by `make test-docker`, which
// builds what it needs from the tools modules and names it in the environment:
//
//	RTSHIM_DOCKERD_29       dockerd of Docker 29 (github.com/moby/moby/v2, tools/docker)
//	RTSHIM_DOCKERD_28       dockerd of Docker 28.5.2 (tools/docker-28)
//	RTSHIM_CONTAINERD_17    containerd, ctr and containerd-shim-runc-v2 of containerd 1.7
//	                        (tools/containerd-1.7), the daemon Docker 28 ships with
//	RTSHIM_DOCKER_CLI       the docker CLI 29 (tools/docker-cli)
//	RTSHIM_DOCKER_COMPOSE   the Compose CLI plugin (tools/docker-compose)

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/internal/harness"
)

// dockerTool is the file the environment variable names; it fails the test when unset.
func dockerTool(t testing.TB, name string) string {
	t.Helper()
	p := os.Getenv(name)
	if p == "" {
		t.Fatalf("%s is not set: run make test-docker", name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// dockerRtshimConfig writes the rtshim config of the Docker tests into dir: contrib/rtshim.toml
// (the operator's defaults and limits, as make install puts it at the ConfigPath that
// contrib/docker/daemon-shim.json names) with limits.honor_env = true, as a Docker < 24 user
// sets it to pass requests as environment variables (docker run -e RTSHIM_...).
func dockerRtshimConfig(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	if strings.Count(conf, "\nhonor_env = false\n") != 1 {
		t.Fatalf("%s: no line honor_env = false to turn on", contribRtshim)
	}
	return writeFile(t, dir, "rtshim-docker.toml", strings.Replace(conf, "\nhonor_env = false\n", "\nhonor_env = true\n", 1))
}

// TestDocker29 runs Docker 29 (dockerd from the moby/v2 module) against the tests' containerd
// 2.4 with contrib/docker/daemon-shim.json as users paste it: Docker starts
// containerd-shim-rt-v2 by its runtime type and sends it the ConfigPath (a copy of
// contrib/rtshim.toml with honor_env on). Then the checks of dockerChecks, and
// contrib/docker/compose.yaml.
func TestDocker29(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	dockerd, cli := dockerTool(t, "RTSHIM_DOCKERD_29"), dockerTool(t, "RTSHIM_DOCKER_CLI")
	compose := dockerTool(t, "RTSHIM_DOCKER_COMPOSE")
	shimForm := loadDockerContrib(t, contribDockerShim)
	rt := shimForm.Runtimes["rt"]
	if rt.RuntimeType != harness.RTRuntime || rt.Options == nil || rt.Options.ConfigPath != config.DefaultPath {
		t.Fatalf("%s: %+v, want runtimeType %s with options.ConfigPath %s", contribDockerShim, rt, harness.RTRuntime, config.DefaultPath)
	}

	d := startContainerd(t)
	rt.Options.ConfigPath = dockerRtshimConfig(t, d.Dir)
	before := harness.SnapshotCPUTree(t)
	k := startDockerd(t, d, dockerd, cli, shimForm.daemonConfig(t, nil))
	t.Logf("dockerd %s", strings.TrimSpace(k.MustDocker(t, "version", "--format",
		"{{.Server.Version}} (API {{.Server.APIVersion}}), containerd {{range .Server.Components}}{{if eq .Name \"containerd\"}}{{.Version}}{{end}}{{end}}")))
	importRootfs(t, k)
	r := &dockerRig{k: k, d: d, before: before}
	r.checks(t)
	t.Run("compose", func(t *testing.T) { r.compose(t, compose) })
	d.AssertRestored(t, before)
}

// TestDocker28 runs Docker 28.5.2 against containerd 1.7, as Docker 28 ships. The runtimeType
// form (contrib/docker/daemon-shim.json) cannot work there: containerd 1.7 cannot start a
// containerd 2.x shim, and docker run must say to use runc-rt. The path form
// (contrib/docker/daemon.json: runc-rt, run by containerd 1.7's runc shim) then passes the
// checks of TestDocker29.
func TestDocker28(t *testing.T) {
	env.RequireRoot(t)
	harness.RequireRTGroupSched(t)
	dockerd, cli := dockerTool(t, "RTSHIM_DOCKERD_28"), dockerTool(t, "RTSHIM_DOCKER_CLI")
	compose := dockerTool(t, "RTSHIM_DOCKER_COMPOSE")
	c17 := filepath.Dir(dockerTool(t, "RTSHIM_CONTAINERD_17"))
	pathForm, shimForm := loadDockerContrib(t, contribDockerPath), loadDockerContrib(t, contribDockerShim)

	// runc-rt runs with containerd's environment: the real runc, and the rtshim config (the
	// path form has no runtime options; this is /etc/containerd/rtshim.toml's place).
	dir := t.TempDir()
	d := startContainerd17(t, c17, "RTSHIM_RUNC="+env.Runc, "RTSHIM_CONFIG="+dockerRtshimConfig(t, dir))
	before := harness.SnapshotCPUTree(t)

	t.Run("runtimeType form refused", func(t *testing.T) {
		shimForm.Runtimes["rt"].Options.ConfigPath = dockerRtshimConfig(t, t.TempDir())
		k := startDockerd(t, d, dockerd, cli, shimForm.daemonConfig(t, nil))
		importRootfs(t, k)
		_, stderr, err := k.Docker(t, "run", "--rm", "--network", "none", "--runtime=rt",
			"--annotation", "rtshim.io/policy=SCHED_FIFO", dockerImage, "/bin/schedinfo")
		if err == nil {
			t.Fatal("docker run with the runtimeType form ran on containerd 1.7")
		}
		for _, want := range []string{
			"is containerd 1.x, which cannot start containerd-shim-rt-v2",
			"runc-rt as a path runtime (contrib/docker/daemon.json)",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("docker run does not say %q:\n%s", want, stderr)
			}
		}
		t.Logf("docker run said: %s", strings.TrimSpace(stderr))
		d.AssertRestored(t, before)
	})

	rt := pathForm.Runtimes["rt"]
	if rt.Path != "/usr/local/bin/runc-rt" {
		t.Errorf("%s: path %q, want /usr/local/bin/runc-rt (where make install puts runc-rt)", contribDockerPath, rt.Path)
	}
	rt.Path = filepath.Join(env.BinDir, "runc-rt")
	pathForm.Runtimes["rt"] = rt
	k := startDockerd(t, d, dockerd, cli, pathForm.daemonConfig(t, nil))
	t.Logf("dockerd %s", strings.TrimSpace(k.MustDocker(t, "version", "--format",
		"{{.Server.Version}} (API {{.Server.APIVersion}}), containerd {{range .Server.Components}}{{if eq .Name \"containerd\"}}{{.Version}}{{end}}{{end}}")))
	importRootfs(t, k)
	r := &dockerRig{k: k, d: d, before: before}
	t.Run("containerd 1.7's runc shim", func(t *testing.T) {
		// As Docker 28 ships: the path runtime runs under containerd 1.7's own runc shim.
		id := strings.TrimSpace(r.mustRun(t, append(append([]string{"-d", "--runtime=rt"}, fifo70Annotations...), dockerImage, "/bin/schedinfo", "-sleep", "600")...))
		r.checkStarted(t, id)
		if exe := shimBinary(t, d, id); exe != filepath.Join(c17, "containerd-shim-runc-v2") {
			t.Errorf("container %s is served by %s, want containerd 1.7's runc shim in %s", id, exe, c17)
		}
		r.k.MustDocker(t, "rm", "-f", id)
		r.checkGone(t, id, "docker rm -f")
	})
	r.checks(t)
	t.Run("compose", func(t *testing.T) { r.compose(t, compose) })
	d.AssertRestored(t, before)
}
