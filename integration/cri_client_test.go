//go:build linux

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/harness"
)

// criNamespace is the containerd namespace of everything the CRI plugin makes.
const criNamespace = "k8s.io"

// criTimeout bounds each CRI call.
const criTimeout = 30 * time.Second

// criClient is a CRI client of a test daemon: what the kubelet talks to.
type criClient = harness.CRIClient

func criCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), criTimeout)
}

// criInfo is what containerd's CRI plugin puts in the "info" entry of a verbose sandbox or
// container status: the process and the OCI spec it made.
type criInfo struct {
	Pid         int         `json:"pid"`
	RuntimeType string      `json:"runtimeType"`
	RuntimeSpec *rspec.Spec `json:"runtimeSpec"`
}

func parseCRIInfo(t testing.TB, what string, info map[string]string) criInfo {
	t.Helper()
	var ci criInfo
	if err := json.Unmarshal([]byte(info["info"]), &ci); err != nil {
		t.Fatalf("%s: verbose info: %v\n%s", what, err, info["info"])
	}
	if ci.Pid <= 0 || ci.RuntimeSpec == nil {
		t.Fatalf("%s: verbose info without pid or runtimeSpec:\n%s", what, info["info"])
	}
	return ci
}

// schedOf is the scheduling policy and RT priority of pid's main thread.
func schedOf(t testing.TB, pid int) (policy, priority uint32) {
	t.Helper()
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		t.Fatalf("sched_getattr(%d): %v", pid, err)
	}
	return a.Policy, a.Priority
}

// policyName names the policies the test sees.
func policyName(p uint32) string {
	if name, ok := map[uint32]string{0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH", 5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}[p]; ok {
		return name
	}
	return strconv.Itoa(int(p))
}

// procSchedLine matches the lines of /proc/<pid>/sched that pod.yaml's containers print:
// "policy   :   1", "prio   :   39".
var procSchedLine = regexp.MustCompile(`^(policy|prio)\s+:\s+(-?\d+)$`)

// waitForProcSched reads a CRI container log ("<time> <stream> <tag> <message>" lines) until
// it holds the policy and prio lines, and returns them.
func waitForProcSched(t testing.TB, logPath string) (policy, prio int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := map[string]int{}
		if f, err := os.Open(logPath); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				fields := strings.SplitN(s.Text(), " ", 4)
				if len(fields) < 4 {
					continue
				}
				if m := procSchedLine.FindStringSubmatch(strings.TrimSpace(fields[3])); m != nil {
					found[m[1]], _ = strconv.Atoi(m[2])
				}
			}
			f.Close()
		}
		if len(found) == 2 {
			return found["policy"], found["prio"]
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s: no policy and prio lines within 10s:\n%s", logPath, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// criClaims lists rtshim's claims of CRI containers among ids.
func criClaims(t testing.TB, ids ...string) []string {
	t.Helper()
	var out []string
	for _, c := range harness.Claims(t) {
		for _, id := range ids {
			if c == cgroupfix.RecordName(criNamespace, id)+".json" {
				out = append(out, c)
			}
		}
	}
	return out
}

// makeQuotaCgroup makes a pod-level cgroup in the cpu hierarchy with the pod's CFS quota and
// shares, as the kubelet does before RunPodSandbox.
func makeQuotaCgroup(t testing.TB, rel string, r kubeletResources) {
	t.Helper()
	dir := harness.CPUV1(rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"cpu.shares", r.shares}, {"cpu.cfs_period_us", cfsPeriodUS}, {"cpu.cfs_quota_us", r.quota}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(strconv.FormatInt(f.v, 10)), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// criShims maps the daemon's shim processes serving CRI containers to the ID each was started
// for (the first container of its group: a pod's sandbox).
func criShims(d *harness.Daemon) map[int]string {
	shims := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") ||
			!slices.Contains(args, d.Address) || !slices.Contains(args, criNamespace) {
			continue
		}
		if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			shims[pid] = args[i+1]
		}
	}
	return shims
}
