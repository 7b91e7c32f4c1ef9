//go:build linux && dockershim

package integration

// Built only with -tags dockershim, by `make test-docker-shim`, which builds the dockerd it
// needs (Docker 29, from tools/docker/go.mod) and names it in RTSHIM_DOCKERD: Debian ships
// only dockerd 20.10, which knows no runtimeType, and building Docker 29 takes minutes.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// TestDockerShim runs a dockerd whose containerd client is 2.x with
// contrib/docker/daemon-shim.json (ConfigPath pointed at a copy of contrib/rtshim.toml):
// Docker starts containerd-shim-rt-v2 by its runtime type and sends it the ConfigPath.
// `docker run --runtime=rt` with RTSHIM_ variables, or with rtshim.io/ annotations, starts the
// program real-time, the budget is held while it runs and given back by `docker rm -f`.
func TestDockerShim(t *testing.T) {
	env.RequireRoot(t)
	dockerd := os.Getenv("RTSHIM_DOCKERD")
	if dockerd == "" {
		t.Fatal("RTSHIM_DOCKERD is not set: run make test-docker-shim")
	}
	shimForm := loadDockerContrib(t, contribDockerShim)
	conf, err := os.ReadFile(contribRtshim)
	if err != nil {
		t.Fatal(err)
	}

	d := startContainerd(t)
	before := harness.SnapshotCPUTree(t)
	// Debian's docker CLI (20.10, API 1.41): the daemon's oldest API by default is 1.40.
	cli := dockerCLI(requireDockerd(t))
	if rt := shimForm.Runtimes["rt"]; rt.RuntimeType != harness.RTRuntime || rt.Options == nil {
		t.Fatalf("%s: %+v, want runtimeType %s with options", contribDockerShim, rt, harness.RTRuntime)
	}
	// contrib's runtimeType form with ConfigPath at a copy of contrib/rtshim.toml.
	shimForm.Runtimes["rt"].Options.ConfigPath = writeFile(t, d.Dir, "rtshim.toml", string(conf))
	k := startDockerd(t, d, dockerd, cli, shimForm.daemonConfig(t, nil))
	t.Logf("dockerd %s", strings.TrimSpace(k.MustDocker(t, "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})")))
	k.importRootfs(t, dockerImage)

	t.Run("environment", func(t *testing.T) {
		out := k.MustDocker(t, "run", "--rm", "--network", "none", "--runtime=rt",
			"-e", "RTSHIM_POLICY=SCHED_FIFO", "-e", "RTSHIM_PRIORITY=70", dockerImage, "/bin/schedinfo")
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_FIFO" || s["priority"] != "70" {
			t.Errorf("docker run --runtime=rt: %v, want SCHED_FIFO 70", s)
		}
	})
	t.Run("annotations", func(t *testing.T) {
		// docker run --annotation needs a CLI >= 24: the API call it makes.
		id := k.createAPI(t, map[string]any{
			"Image": dockerImage, "Cmd": []string{"/bin/schedinfo"},
			"HostConfig": map[string]any{"Runtime": "rt", "NetworkMode": "none",
				"Annotations": map[string]string{"rtshim.io/policy": "SCHED_RR", "rtshim.io/priority": "60"}},
		})
		out := k.MustDocker(t, "start", "-a", id)
		k.MustDocker(t, "rm", "-f", id)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_RR" || s["priority"] != "60" {
			t.Errorf("docker run --runtime=rt --annotation: %v, want SCHED_RR 60", s)
		}
	})
	t.Run("budget", func(t *testing.T) {
		id := strings.TrimSpace(k.MustDocker(t, "run", "-d", "--network", "none", "--runtime=rt",
			"-e", "RTSHIM_POLICY=SCHED_FIFO", dockerImage, "/bin/schedinfo", "-sleep", "300"))
		pid, err := strconv.Atoi(strings.TrimSpace(k.MustDocker(t, "inspect", "-f", "{{.State.Pid}}", id)))
		if err != nil || pid <= 0 {
			t.Fatalf("docker inspect %s: pid %d, %v", id, pid, err)
		}
		if p := d.ShimPID(t, id); p == 0 {
			t.Errorf("no containerd-shim-rt-v2 serves %s", id)
		}
		cg := harness.CPUCgroupOf(t, pid)
		if harness.RTGroupSched() {
			if got := harness.ReadInt(t, filepath.Join(harness.CPUV1(cg), "cpu.rt_runtime_us")); got != 100000 {
				t.Errorf("cpu.rt_runtime_us of %s while running: %d, want 100000", cg, got)
			}
		}
		if s := harness.ParseSched(t, k.MustDocker(t, "exec", id, "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
			t.Errorf("docker exec: %v, want SCHED_OTHER (the exec policy)", s)
		}
		k.MustDocker(t, "rm", "-f", id)
		d.AssertRestored(t, before)
	})
}

// createAPI creates a container through the Engine API (its newest version) and returns its ID.
func (k *Dockerd) createAPI(t testing.TB, body map[string]any) string {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", k.Socket)
	}}}
	apiVersion := strings.TrimSpace(k.MustDocker(t, "version", "--format", "{{.Server.APIVersion}}"))
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(fmt.Sprintf("http://docker/v%s/containers/create", apiVersion), "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var created struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(out, &created) != nil || created.ID == "" {
		t.Fatalf("POST /containers/create: %s: %s", resp.Status, out)
	}
	return created.ID
}
