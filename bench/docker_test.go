//go:build linux

package bench

// BenchmarkDocker: Docker's own RT route against rtshim under the same dockerd (Docker 29,
// make tools-docker), with the stock runc runtime as the control. `make bench` builds dockerd
// and the docker CLI and names them:
//
//	RTSHIM_DOCKERD_29   dockerd of Docker 29 (tools/docker)
//	RTSHIM_DOCKER_CLI   the docker CLI 29 (tools/docker-cli)
//
// The rounds of its lifecycle part are RTSHIM_BENCH_ROUNDS / 5 (at least 2): a Docker
// lifecycle is four docker commands, each many times a ctr run's cost.

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// Docker's route: the daemon's budget (dockerd --cpu-rt-runtime, written into every ancestor of
// the containers' cgroups below the root) and each container's (docker run --cpu-rt-runtime).
const (
	dockerDaemonRT    = 500000
	dockerContainerRT = 95000
	dockerImage       = "rtshim-bench:latest"
)

// dockerKind is one way to run a container under the benchmark's dockerd.
type dockerKind struct {
	key, name string
	short     string   // for the figures
	runtime   string   // docker run --runtime; "" is dockerd's default, the stock runc shim
	flags     []string // more docker run flags
	// rt: the container runs SCHED_FIFO 80; self: by switching itself (chrt -f 80, cyclictest
	// -p 80) with Docker's capability and budget, not through rtshim.
	rt, self bool
}

// annotationFlags is annotations as docker run --annotation flags, sorted.
func annotationFlags(annotations map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		out = append(out, "--annotation", k+"="+annotations[k])
	}
	return out
}

// dockerKinds are the peers. withGrant: rtshim's grant mode (the program switches itself, as
// cyclictest does: the latency runs) rather than apply mode (the program starts SCHED_FIFO 80:
// the lifecycle runs).
func dockerKinds(withGrant bool) []dockerKind {
	request := fifo80
	if withGrant {
		request = grantFIFO80
	}
	return []dockerKind{
		{"docker", "Docker's route: runc, --cpu-rt-runtime, --cap-add=sys_nice, chrt", "Docker's route", "",
			[]string{"--cpu-rt-runtime=" + strconv.Itoa(dockerContainerRT), "--cap-add=sys_nice"}, true, true},
		{"rt", "rt shim (runtimeType io.containerd.rt.v2)", "rt shim", "rt", annotationFlags(request), true, false},
		{"runc-rt", "runc-rt (path runtime)", "runc-rt", "runc-rt", annotationFlags(request), true, false},
		{"control", "stock runc, no RT (control)", "stock runc", "", nil, false, false},
	}
}

// dockerRig is the benchmark's dockerd on its containerd.
type dockerRig struct {
	k *harness.Dockerd
	d *harness.Daemon
}

// dockerTool is the binary the environment variable names (make bench sets it).
func dockerTool(b *testing.B, name string) string {
	b.Helper()
	p := os.Getenv(name)
	if p == "" {
		b.Fatalf("%s is not set: run the benchmarks with `make bench`, which builds Docker 29 (make tools-docker)", name)
	}
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return p
}

// startDockerRig starts containerd and Docker 29 with rtshim in both forms: "rt" (runtimeType,
// contrib/docker/daemon-shim.json's form, ConfigPath the benchmarks' rtshim config) and
// "runc-rt" (path, contrib/docker/daemon.json's form). runc-rt learns the real runc and the
// config from containerd's environment.
func startDockerRig(b *testing.B) *dockerRig {
	b.Helper()
	dockerd, cli := dockerTool(b, "RTSHIM_DOCKERD_29"), dockerTool(b, "RTSHIM_DOCKER_CLI")
	d := env.StartContainerd(b, harness.Options{Env: []string{"RTSHIM_RUNC=" + env.Runc}})
	keepLog(b, d)
	// The same rtshim config as runc-rt's (RTSHIM_CONFIG): the benchmarks' (harness.SuiteConfig).
	shimConfig := filepath.Join(d.Dir, "rtshim-docker.toml")
	if err := os.WriteFile(shimConfig, []byte(env.ShimConfig), 0o644); err != nil {
		b.Fatal(err)
	}
	config := map[string]any{"runtimes": map[string]any{
		"rt":      map[string]any{"runtimeType": harness.RTRuntime, "options": map[string]string{"ConfigPath": shimConfig}},
		"runc-rt": map[string]any{"path": filepath.Join(env.BinDir, "runc-rt")},
	}}
	k := env.StartDockerd(b, d, harness.DockerdOptions{Dockerd: dockerd, CLI: cli, Config: config})
	k.ImportRootfs(b, env.Rootfs, dockerImage)
	return &dockerRig{k: k, d: d}
}

// version is the daemon's version (the moby/v2 module's, as make tools-docker stamps it) and
// its containerd's: "v2.0.0-beta.24, containerd v2.4.2".
func (r *dockerRig) version(b *testing.B) string {
	return strings.TrimSpace(r.k.MustDocker(b, "version", "--format",
		"{{.Server.Version}}, containerd {{range .Server.Components}}{{if eq .Name \"containerd\"}}{{.Version}}{{end}}{{end}}"))
}

// BenchmarkDocker compares Docker's own RT route (dockerd --cpu-rt-runtime, docker run
// --cpu-rt-runtime --cap-add=sys_nice, the program switching itself) with rtshim in both of its
// Docker forms and the stock runc runtime, all under one dockerd: what each leaves on the host
// after docker rm, lifecycle time, and wake-up latency under load.
func BenchmarkDocker(b *testing.B) {
	env.RequireRoot(b)
	harness.RequireRTGroupSched(b)
	requireBenchRootfs(b)
	rootBefore := harness.RootRTAvailable(b)
	// Registered first, so it runs last: after the daemons' cleanups removed their cgroups, the
	// root's RT budget must be whole again.
	b.Cleanup(func() {
		if now := harness.RootRTAvailable(b); now != rootBefore {
			b.Errorf("RT budget left for the root's other groups: %d µs before the benchmark, %d after its cleanup", rootBefore, now)
		}
	})
	r := startDockerRig(b)
	version := r.version(b)

	// Without the daemon flag first (how rtshim is run), then with it (Docker's route), the
	// same dockerd restarted.
	start := harness.SnapshotCPUTree(b)
	var left []residueRow
	for _, k := range dockerKinds(false) {
		left = append(left, r.residue(b, k, false))
	}
	r.k.Restart(b, "--cpu-rt-runtime="+strconv.Itoa(dockerDaemonRT))
	for _, k := range dockerKinds(false) {
		left = append(left, r.residue(b, k, true))
	}

	life := r.lifecycles(b, max(2, envInt(b, "RTSHIM_BENCH_ROUNDS", 100)/5))
	lat := r.latencies(b)

	// What stays once dockerd is gone: the daemon's flag wrote its budget into cgroups that
	// no container uses any more, and nothing takes it back.
	r.k.Stop(b)
	afterStop := r.d.Residue(b, start)
	rootAfterStop := harness.RootRTAvailable(b)

	s := newSection("60-docker", "Docker's RT route against rtshim (Docker 29)")
	s.para("One private dockerd of Docker 29 (github.com/moby/moby/v2 %s, built from tools/docker by `make tools-docker`) "+
		"on the benchmarks' containerd, its containers' cgroups under `/<ns>/docker` (`--cgroup-parent`, cgroupfs driver; "+
		"`<ns>` is the benchmark's own cgroup, removed with its containerd), with three runtimes: "+
		"the default (the stock runc shim and runc), `rt` (rtshim's shim, `runtimeType: %s` with `ConfigPath`: "+
		"contrib/docker/daemon-shim.json's form) and `runc-rt` (rtshim's runc wrapper as a `path` runtime: "+
		"contrib/docker/daemon.json's form). *Docker's route* is what Docker documents: dockerd started with "+
		"`--cpu-rt-runtime=%d` (so that its parent cgroups have RT budget), `docker run --cpu-rt-runtime=%d "+
		"--cap-add=sys_nice` on the default runtime, and the program switching itself to SCHED_FIFO 80 "+
		"(`chrt -f 80 ...`, `cyclictest -p 80`). The rtshim rows ask with `--annotation rtshim.io/policy=SCHED_FIFO "+
		"--annotation rtshim.io/priority=80` and no Docker RT flag. The control is the default runtime without any "+
		"RT request.", version, harness.RTRuntime, dockerDaemonRT, dockerContainerRT)
	r.reportResidue(b, s, left, afterStop, rootBefore, rootAfterStop)
	r.reportLifecycle(b, s, life)
	r.reportLatency(b, s, lat)
	s.save(b)
	b.ReportMetric(0, "ns/op")
}

// rtshimKind reports whether k is one of rtshim's forms (the rows with goals).
func (k dockerKind) rtshimKind() bool { return k.key == "rt" || k.key == "runc-rt" }
