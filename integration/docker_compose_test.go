//go:build linux && docker

package integration

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rtshim/rtshim/internal/harness"
)

// contribCompose is the Compose example that TestDocker29 and TestDocker28 run.
const contribCompose = "../contrib/docker/compose.yaml"

// composeFile is what contrib/docker/compose.yaml may hold, decoded strictly: a key the test
// does not know would go untested, so it fails the test.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Runtime     string            `yaml:"runtime"`
		Annotations map[string]string `yaml:"annotations"`
		Environment map[string]string `yaml:"environment"`
		CPUs        float64           `yaml:"cpus"`
		Command     []string          `yaml:"command"`
	} `yaml:"services"`
}

// composeSchedLine is a policy or prio line of /proc/<pid>/sched, which the example's services
// print: "policy      :      1".
var composeSchedLine = regexp.MustCompile(`(?m)^(policy|prio)\s+:\s+(\d+)$`)

// compose runs contrib/docker/compose.yaml with the Compose CLI plugin (bin): the file as it
// is, plus an override that only swaps each service's image for the test's (which has the
// busybox the example's commands use), takes it off the network (dockerd runs with no bridge)
// and makes stopping quick. The service with runtime rt starts with the policy its
// annotations (or RTSHIM_ environment) ask for and the budget, without its CPU limit, exec'd
// processes run SCHED_OTHER; the other service runs as usual; `docker compose down` leaves
// nothing behind.
func (r *dockerRig) compose(t *testing.T, bin string) {
	b, err := os.ReadFile(contribCompose)
	if err != nil {
		t.Fatal(err)
	}
	var file composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", contribCompose, err)
	}
	var rtService string
	var prio int
	var override strings.Builder
	override.WriteString("services:\n")
	for _, name := range slices.Sorted(maps.Keys(file.Services)) {
		s := file.Services[name]
		fmt.Fprintf(&override, "  %s:\n    image: %s\n    network_mode: none\n    stop_grace_period: 1s\n", name, dockerImage)
		if s.Runtime == "" {
			continue
		}
		if s.Runtime != "rt" || rtService != "" {
			t.Fatalf("%s: service %s has runtime %q; want one service with runtime rt", contribCompose, name, s.Runtime)
		}
		rtService = name
		req := map[string]string{"policy": s.Annotations["rtshim.io/policy"], "priority": s.Annotations["rtshim.io/priority"]}
		if req["policy"] == "" {
			req = map[string]string{"policy": s.Environment["RTSHIM_POLICY"], "priority": s.Environment["RTSHIM_PRIORITY"]}
		}
		if req["policy"] != "SCHED_FIFO" {
			t.Fatalf("%s: service %s asks for %v; the test knows SCHED_FIFO", contribCompose, name, req)
		}
		if prio, err = strconv.Atoi(req["priority"]); err != nil {
			t.Fatalf("%s: service %s: priority %q: %v", contribCompose, name, req["priority"], err)
		}
		if s.CPUs == 0 {
			t.Errorf("%s: service %s has no cpus limit, whose lifting the example shows", contribCompose, name)
		}
	}
	if rtService == "" || len(file.Services) < 2 {
		t.Fatalf("%s: want a stack with one service of runtime rt and others: %v", contribCompose, file.Services)
	}

	plugins := filepath.Join(r.k.Dir, "cli", "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(plugins, "docker-compose")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	t.Logf("%s", strings.TrimSpace(r.k.MustDocker(t, "compose", "version")))
	project := []string{"compose", "--project-name", "rtshim-example", "--file", contribCompose,
		"--file", writeFile(t, r.k.Dir, "compose.test.yaml", override.String())}
	composeCmd := func(args ...string) string { return r.k.MustDocker(t, append(slices.Clone(project), args...)...) }
	composeCmd("up", "--detach", "--quiet-pull")
	downed := false
	defer func() {
		if !downed {
			composeCmd("down", "--timeout", "1")
		}
	}()

	for name := range file.Services {
		id := strings.TrimSpace(composeCmd("ps", "--quiet", name))
		logs := r.waitLogs(t, id, "prio")
		got := map[string]int{}
		for _, m := range composeSchedLine.FindAllStringSubmatch(logs, -1) {
			got[m[1]], _ = strconv.Atoi(m[2])
		}
		if name != rtService {
			if got["policy"] != 0 {
				t.Errorf("service %s started with %v, want policy 0 (SCHED_OTHER)", name, got)
			}
			if rt := harness.ReadInt(t, filepath.Join(harness.CPUV1(r.cgroup(t, id)), "cpu.rt_runtime_us")); rt != 0 {
				t.Errorf("service %s: cpu.rt_runtime_us %d, want 0", name, rt)
			}
			continue
		}
		// The kernel's prio of an RT task is 99 - its RT priority.
		if got["policy"] != 1 || got["prio"] != 99-prio {
			t.Errorf("service %s started with %v, want policy 1 (SCHED_FIFO) prio %d (priority %d)", name, got, 99-prio, prio)
		}
		r.checkRunning(t, id, int64(prio), 100000)
		if s := harness.ParseSched(t, composeCmd("exec", "-T", name, "/bin/schedinfo")); s["policy"] != "SCHED_OTHER" {
			t.Errorf("docker compose exec %s: %v, want SCHED_OTHER", name, s)
		}
	}
	ids := strings.Fields(composeCmd("ps", "--all", "--quiet"))
	composeCmd("down", "--timeout", "1")
	downed = true
	for _, id := range ids {
		r.checkGone(t, id, "docker compose down")
	}
	if nets := strings.TrimSpace(r.k.MustDocker(t, "network", "ls", "--quiet", "--filter", "label=com.docker.compose.project=rtshim-example")); nets != "" {
		t.Errorf("docker compose down left networks: %s", nets)
	}
}
