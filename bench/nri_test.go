//go:build linux

package bench

// BenchmarkNRIRoute is issue 15's second peer, the NRI route: a policy plugin that answers
// containerd's NRI CreateContainer with a process.scheduler adjustment (what a scheduling class
// of containers/nri-plugins ≥ v0.14 does), on the same containerd and the same pods as rtshim.
//
//	RTSHIM_NRI_PLUGIN        the NRI plugin binary (hack/nri-sched: `make bench` builds it)
//	RTSHIM_NRI_PLUGINS_BUILD the log of `make tools-nri`'s attempt at building
//	                         containers/nri-plugins from tools/nri-plugins: its last line
//	                         is "exit status N"
//	RTSHIM_NRI_VM_REPORT     the cgroup v2 figures of the last passing `make test-v2`
//	                         (vmtest's TestV2NRIRoute), included as they are, with their date;
//	                         absent, the section says so and its VM goal is a MISS

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/bench/plot"
	"github.com/rtshim/rtshim/internal/harness"
)

// goalNRITime: rtshim's create-to-running median (SCHED_FIFO, budget granted up the tree)
// over the NRI route's with no request (stock runc shim, the plugin in the path).
const goalNRITime = 1.10

// Pod annotations hack/nri-sched reads.
const (
	nriPolicy    = "nri-sched.rtshim.io/policy"
	nriPriority  = "nri-sched.rtshim.io/priority"
	nriRTRuntime = "nri-sched.rtshim.io/rt-runtime-us"
	nriAdjusted  = "nri-sched.rtshim.io/adjusted"
)

// nriCase is one pod of BenchmarkNRIRoute: a route and its request.
type nriCase struct {
	name, handler string
	annotations   map[string]string
	wantRT        bool // the request is SCHED_FIFO 80
}

var nriCases = []nriCase{
	{"NRI route, no request", "", nil, false},
	{"NRI route, SCHED_FIFO 80", "", map[string]string{nriPolicy: "SCHED_FIFO", nriPriority: "80"}, true},
	{"NRI route, SCHED_FIFO 80 + own rt_runtime_us 10000", "", map[string]string{nriPolicy: "SCHED_FIFO", nriPriority: "80", nriRTRuntime: "10000"}, true},
	{"rtshim, SCHED_FIFO 80", "rt", fifo80, true},
}

// nriResult is what a case's rounds gave.
type nriResult struct {
	times    []float64 // ms, of the rounds that ran
	errs     []string  // distinct errors, ids masked
	policies []string  // distinct "SCHED_FIFO 80"s the kernel reported
	adjusted bool      // the plugin's annotation was in a spec
}

func BenchmarkNRIRoute(b *testing.B) {
	env.RequireRoot(b)
	plugin := os.Getenv("RTSHIM_NRI_PLUGIN")
	if _, err := os.Stat(plugin); err != nil || plugin == "" {
		b.Fatalf("RTSHIM_NRI_PLUGIN=%q: want the hack/nri-sched binary (`make bench` builds it): %v", plugin, err)
	}
	build := nriPluginsBuild(b)
	rounds := min(envInt(b, "RTSHIM_BENCH_ROUNDS", 100), 20)

	d, c := env.StartCRI(b, harness.Options{NRI: []string{plugin}})
	keepLog(b, d)
	d.WaitNRIPlugin(b, "nri-sched")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cgv := "cgroup v1 without RT group scheduling"
	if harness.RTGroupSched() {
		cgv = "cgroup v1 with RT group scheduling"
	}

	load := loadAvg()
	results := make([]nriResult, len(nriCases))
	pods := make([]*harness.CRIPod, len(nriCases))
	for i, k := range nriCases {
		pods[i] = d.RunPod(b, c, fmt.Sprintf("nri-%d", i), k.handler, k.annotations)
	}
	// Rounds interleave the cases, each round in another order, so that no case has the
	// host's warm-up or a quiet spell to itself.
	for n := range rounds {
		for j := range nriCases {
			i := (n + j) % len(nriCases)
			s, id := pods[i].Start(b, fmt.Sprintf("c%d", n))
			r := &results[i]
			r.adjusted = r.adjusted || s.Spec.Annotations[nriAdjusted] != ""
			if s.Err != nil {
				r.errs = appendNew(r.errs, maskIDs(s.Err.Error(), d.Namespace))
			} else {
				r.times = append(r.times, ms(s.Elapsed))
				r.policies = appendNew(r.policies, fmt.Sprintf("%s %d", harness.PolicyName(s.Policy), s.Priority))
			}
			pods[i].Remove(b, id)
		}
	}

	s := newSection("45-nri", "Peer: the NRI route")
	s.para("What users who want RT containers under Kubernetes would reach for besides rtshim: an NRI "+
		"plugin. containerd's NRI (on by default in containerd 2.x, NRI %s here) lets a plugin adjust a "+
		"container's OCI spec before runc sees it, `process.scheduler` included (NRI ≥ 0.11); "+
		"containers/nri-plugins' balloons and topology-aware policies have scheduling classes "+
		"(fifo/rr) from v0.14 that do just that. It cannot grant the ancestors' RT budgets. "+
		"Kernel %s, %s; containerd %s with CRI and NRI, the same pods (host network, `/bin/sleep` with "+
		"CAP_SYS_NICE) through the stock runc shim with the NRI plugin, and through rtshim (runtime "+
		"handler `rt`); %d rounds, each running the four cases in turn (in another order each round); create-to-running is CreateContainer called to StartContainer "+
		"returned.", nriVersion(), strings.TrimSpace(string(kernel)), cgv, env.ContainerdVersion, rounds)
	s.para("**containers/nri-plugins** (tools/nri-plugins, pinned at v0.10.1, the only release the Go "+
		"module proxy serves): %s", build)
	s.para("So the plugin here is **hack/nri-sched**, a stand-in of about 100 lines built on NRI's own plugin " +
		"library (containerd/nri's `stub`, the version containerd links): on CreateContainer it sets " +
		"`process.scheduler` from the pod's `nri-sched.rtshim.io/*` annotations — a scheduling class's " +
		"adjustment and nothing else — and, if asked, the container's own `cpu.rt_runtime_us` " +
		"(`linux.resources.cpu.realtimeRuntime`), the one budget NRI can set. containerd starts it from " +
		"its NRI plugin_path; the benchmark waits until it has registered.")

	t := newTable("route, request", "ran", "policy (kernel)", "NRI adjustment in spec", "create→running p50 ms", "max ms", "outcome")
	for i, k := range nriCases {
		r := results[i]
		outcome := "runs"
		if len(r.errs) > 0 {
			outcome = strings.Join(r.errs, "; ")
		}
		adj := "-"
		if k.handler == "" && k.wantRT {
			adj = map[bool]string{true: "yes", false: "not seen"}[r.adjusted]
		}
		p50, maxMS := "-", "-"
		if len(r.times) > 0 {
			p50, maxMS = fmt.Sprintf("%.0f", median(r.times)), fmt.Sprintf("%.0f", percentile(r.times, 100))
		}
		pol := strings.Join(r.policies, ", ")
		if pol == "" {
			pol = "-"
		}
		t.add(k.name, fmt.Sprintf("%d/%d", len(r.times), rounds), pol, adj, p50, maxMS, outcome)
	}
	s.table(t)
	nriVerdicts(b, s, results, rounds, load)
	bars := plot.Bars{Title: "CRI create→running, " + cgv, YLabel: "milliseconds", Series: []plot.BarSeries{{Name: "median"}, {Name: "max"}}}
	for i, k := range nriCases {
		if len(results[i].times) == 0 {
			continue // refused: nothing to plot
		}
		bars.Groups = append(bars.Groups, strings.Replace(k.name, ", ", ",\n", 1))
		bars.Series[0].Values = append(bars.Series[0].Values, median(results[i].times))
		bars.Series[1].Values = append(bars.Series[1].Values, percentile(results[i].times, 100))
	}
	s.plot(b, "times", "CRI create-to-running time by route", bars.WriteSVG)
	nriVMFigures(b, s)
	s.save(b)
	b.ReportMetric(0, "ns/op")
}

// nriVerdicts adds the section's goals: rtshim runs SCHED_FIFO 80 in every round, in time
// comparable to the NRI route without a request; the NRI route's outcome is recorded as it is.
func nriVerdicts(b *testing.B, s *benchSection, results []nriResult, rounds int, loadBefore string) {
	b.Helper()
	control, rt := results[0], results[3]
	ok := len(rt.times) == rounds && slices.Equal(rt.policies, []string{"SCHED_FIFO 80"})
	s.goal("NRI peer: rtshim, the same pod through CRI: SCHED_FIFO 80 seen by the kernel, every round",
		fmt.Sprintf("%d/%d, %s", len(rt.times), rounds, strings.Join(rt.policies, ", ")), "all rounds", ok)
	if len(control.times) == 0 || len(rt.times) == 0 {
		s.goal("NRI peer: create→running median, rtshim SCHED_FIFO / NRI route no request", "no figure: a route did not run",
			fmt.Sprintf("≤ %.2f", goalNRITime), false)
	} else {
		r := median(rt.times) / median(control.times)
		s.goal("NRI peer: create→running median, rtshim SCHED_FIFO / NRI route no request", fmt.Sprintf("%.3f", r),
			fmt.Sprintf("≤ %.2f", goalNRITime), r <= goalNRITime)
		if r > goalNRITime {
			s.para("**MISS** (create→running, %.3f × the NRI route's): rtshim's interval holds what the other "+
				"does not, the RT budget granted up the cgroup tree and the policy set on the paused init "+
				"between `runc create` and `runc start`, against a container that asks for no RT at all; "+
				"over %d rounds (medians %.0f and %.0f ms) with the host's load average %s before and %s "+
				"after, other work on the host moves these times by more than that (see the lifecycle "+
				"section for the wrapper's own cost).", r, rounds, median(rt.times), median(control.times),
				loadBefore, loadAvg())
		}
	}
	for i, r := range results[1:3] {
		if !r.adjusted {
			b.Errorf("%s: the plugin's adjustment is in no container's spec: NRI did not take part", nriCases[1+i].name)
		}
	}
	if harness.RTGroupSched() {
		s.para("On cgroup v1 with RT group scheduling the NRI route's SCHED_FIFO request fails in `runc create` " +
			"(StartContainer): runc applies `process.scheduler` in `runc init`, inside a container cgroup " +
			"whose `cpu.rt_runtime_us` is 0, and the kernel refuses. Setting the container's own budget too " +
			"fails earlier: the kernel refuses a child's budget while its parents' are 0 (EINVAL), and no NRI " +
			"adjustment reaches the parents (the pod and kubepods cgroups, made by the kubelet or here by " +
			"runc). rtshim grants the budget up the tree between `runc create` and `runc start`, so the same " +
			"pod runs SCHED_FIFO. Where RT needs no budget (cgroup v2 without RT group scheduling) the NRI " +
			"route can work: the VM tier's figures below compare the two there.")
	}
}

// nriPluginsBuild reads `make tools-nri`'s outcome: "built" or why not, for the report.
func nriPluginsBuild(b *testing.B) string {
	b.Helper()
	path := os.Getenv("RTSHIM_NRI_PLUGINS_BUILD")
	out, err := os.ReadFile(path)
	if err != nil || path == "" {
		b.Fatalf("RTSHIM_NRI_PLUGINS_BUILD=%q: want the log of `make tools-nri`: %v", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "exit status ") {
		b.Fatalf("%s: last line %q, want \"exit status N\"", path, last)
	}
	if last == "exit status 0" {
		return "its balloons policy builds (`make tools-nri`); this benchmark does not run it (below: the stand-in)."
	}
	var why []string
	for _, l := range lines[:len(lines)-1] {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "go: downloading") {
			why = append(why, l)
		}
	}
	return "its balloons policy **does not build** outside its repository (`make tools-nri`, " + last + "):\n\n```\n" +
		strings.Join(why, "\n") + "\n```\n\n" +
		"Its go.mod takes its own nested module `github.com/containers/nri-plugins/pkg/topology` from " +
		"`./pkg/topology` by a replace directive, which the go command ignores in a dependency, and the " +
		"proxy serves no version of that module. Without Kubernetes it would take its policy config from " +
		"`--config-file` (instead of a CustomResource, `pkg/agent`). Were it built, v0.10.1 could not set SCHED_FIFO anyway: " +
		"it has no scheduling classes (no `process.scheduler` and no RT budget anywhere in its source), and " +
		"the NRI library it links (v0.9.1-0.20250530003506-6120e633d4ad) predates NRI's scheduler adjustment."
}

// nriVersion is the NRI library of the containerd under test, from its build info.
func nriVersion() string {
	return moduleVersion(filepath.Join(env.ContainerdDir, "containerd"), "github.com/containerd/nri")
}

var (
	hexID  = regexp.MustCompile(`[0-9a-f]{32,}`)
	podUID = regexp.MustCompile(`/podnri-[0-9]+-[0-9]+/`)
)

// maskIDs replaces container and sandbox ids, pod uids and the daemon's namespace in an
// error, so that equal errors of rounds compare and the report names no run's directories.
func maskIDs(s, namespace string) string {
	s = strings.ReplaceAll(hexID.ReplaceAllString(s, "<id>"), "/"+namespace+"/", "/<namespace>/")
	return podUID.ReplaceAllString(s, "/pod<uid>/")
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// nriVMFigures adds the cgroup v2 VM tier's figures of the NRI route (RTSHIM_NRI_VM_REPORT,
// written by the last passing `make test-v2`): "date <RFC 3339>", then "md <line>" and
// "goal <figure>\t<measured>\t<wanted>\t<verdict>" lines.
func nriVMFigures(b *testing.B, s *benchSection) {
	b.Helper()
	path := os.Getenv("RTSHIM_NRI_VM_REPORT")
	if path == "" {
		b.Fatal("RTSHIM_NRI_VM_REPORT is not set: `make bench` names where `make test-v2` leaves the VM's NRI figures")
	}
	const figure = "NRI peer, cgroup v2 VM: figures from a passing `make test-v2`"
	out, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		s.Printf("### cgroup v2 (the VM tier)\n\n")
		s.para("No figures: no passing `make test-v2` has left them (%s). Run it before `make bench`.", repoRel(path))
		s.goal(figure, "none", "present", false)
		return
	}
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	date, ok := strings.CutPrefix(lines[0], "date ")
	if !ok {
		b.Fatalf("%s: first line %q, want \"date <time>\"", path, lines[0])
	}
	s.Printf("### cgroup v2 (the VM tier, `make test-v2` of %s)\n\n", date)
	s.para("Not measured by this run: TestV2NRIRoute's figures from the last passing `make test-v2`, " +
		"the same pods in Debian's PREEMPT_RT kernel under qemu, where RT needs no budget.")
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "md "):
			s.Printf("%s\n", strings.TrimPrefix(l, "md "))
		case l == "md":
			s.Printf("\n")
		case strings.HasPrefix(l, "goal "):
			f := strings.Split(strings.TrimPrefix(l, "goal "), "\t")
			if len(f) != 4 || (f[3] != "PASS" && f[3] != "MISS") {
				b.Fatalf("%s: bad goal line %q", path, l)
			}
			s.goal(f[0]+" ("+date+")", f[1], f[2], f[3] == "PASS")
		default:
			b.Fatalf("%s: unknown line %q", path, l)
		}
	}
	s.Printf("\n")
}
