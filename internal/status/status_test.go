package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
)

// fake is a state dir, a procfs with mountinfo and shim processes, and a cgroup hierarchy.
type fake struct {
	t                   *testing.T
	proc, state, cgroup string
	sched               map[int]Sched
}

func newFake(t *testing.T, v2 bool) *fake {
	root := t.TempDir()
	f := &fake{t: t, proc: filepath.Join(root, "proc"), state: filepath.Join(root, "state"),
		cgroup: filepath.Join(root, "cgroup"), sched: map[int]Sched{}}
	line := "32 31 0:29 / " + f.cgroup + " rw - cgroup cgroup rw,cpu,cpuacct"
	if v2 {
		line = "26 25 0:23 / " + f.cgroup + " rw - cgroup2 cgroup2 rw"
	}
	f.write(filepath.Join(f.proc, "self", "mountinfo"), line+"\n")
	return f
}

func (f *fake) write(path, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// shim makes pid a live process started at start (field 22 of its stat).
func (f *fake) shim(pid int, start uint64) {
	f.write(filepath.Join(f.proc, fmt.Sprint(pid), "stat"),
		fmt.Sprintf("%d (containerd-shim) S%s %d 0 0\n", pid, strings.Repeat(" 0", 18), start))
}

func (f *fake) cgroupFiles(cg string, files map[string]string) {
	for name, v := range files {
		f.write(filepath.Join(f.cgroup, cg, name), v+"\n")
	}
}

func (f *fake) claim(c cgroupfix.Claim) {
	f.t.Helper()
	if err := (cgroupfix.State{Dir: f.state}).SaveClaim(&c); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fake) list() Report {
	f.t.Helper()
	r, err := List(Host{ProcRoot: f.proc, StateDir: f.state, Sched: func(pid int) (Sched, error) {
		if s, ok := f.sched[pid]; ok {
			return s, nil
		}
		return Sched{}, errors.New("no such process")
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func TestListV1(t *testing.T) {
	f := newFake(t, false)
	f.shim(500, 777)
	f.claim(cgroupfix.Claim{Namespace: "k8s.io", ID: "app", Leaf: "/kubepods/pod1/app", Pod: "/kubepods/pod1",
		RuntimeUS: 100000, PeriodUS: 1000000, ExemptQuota: true, Owner: cgroupfix.Owner{PID: 500, StartTime: 777}})
	f.cgroupFiles("/kubepods/pod1/app", map[string]string{"cgroup.procs": "41\n42", "cpu.rt_runtime_us": "100000",
		"cpu.rt_period_us": "1000000", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"})
	f.cgroupFiles("/kubepods/pod1", map[string]string{"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"})
	f.sched[41] = Sched{Policy: "SCHED_FIFO", Priority: 80}
	f.sched[42] = Sched{Policy: "SCHED_FIFO", Priority: 80}
	// A claim whose shim was killed (start time differs: the pid was reused) and whose cgroup is gone.
	f.shim(600, 1)
	f.claim(cgroupfix.Claim{Namespace: "default", ID: "old", Leaf: "/default/old", RuntimeUS: 50000, PeriodUS: 1000000,
		Owner: cgroupfix.Owner{PID: 600, StartTime: 2}})

	r := f.list()
	if len(r.Containers) != 2 || r.CgroupV2 || r.CgroupMount != f.cgroup {
		t.Fatalf("report: %+v", r)
	}
	old, app := r.Containers[0], r.Containers[1] // sorted by namespace
	if app.ID != "app" || !app.CgroupExists || !app.Shim.Alive || app.Shim.PID != 500 || len(app.Processes) != 2 ||
		app.PolicySummary() != "SCHED_FIFO/80" || *app.Budget != (Budget{100000, 1000000}) ||
		app.Quota != "max" || app.PodQuota != "50000/100000" || !app.ExemptQuota {
		t.Errorf("app: %+v", app)
	}
	if old.ID != "old" || old.CgroupExists || old.Shim.Alive || old.Budget != nil || *old.Claimed != (Budget{50000, 1000000}) ||
		old.PolicySummary() != "-" {
		t.Errorf("old: %+v", old)
	}

	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"NAMESPACE", "k8s.io     app  2     SCHED_FIFO/80  100000/1000000  max        50000/100000  alive (pid 500)",
		"default    old  -     cgroup gone", "gone (pid 600)", "is released by the next RT container's Create",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

func TestListV2AndMixedPolicies(t *testing.T) {
	f := newFake(t, true)
	f.shim(500, 9)
	f.claim(cgroupfix.Claim{Namespace: "default", ID: "mixed", Leaf: "/rt/mixed", ExemptQuota: true,
		Owner: cgroupfix.Owner{PID: 500, StartTime: 9}})
	f.cgroupFiles("/rt/mixed", map[string]string{"cgroup.procs": "7\n8\n9", "cpu.max": "max 100000"})
	f.sched[7] = Sched{Policy: "SCHED_RR", Priority: 10}
	f.sched[8] = Sched{Policy: "SCHED_OTHER"}
	f.sched[10] = Sched{Policy: "SCHED_DEADLINE", RuntimeNS: 500000, DeadlineNS: 1000000, PeriodNS: 1000000}
	if s := f.sched[10].String(); s != "SCHED_DEADLINE/runtime=500µs,deadline=1ms,period=1ms" {
		t.Errorf("deadline summary %q", s)
	}
	r := f.list()
	c := r.Containers[0]
	if !r.CgroupV2 || c.Budget != nil || c.Quota != "max" || c.Processes[2].Error == "" ||
		c.PolicySummary() != "SCHED_RR/10×1,SCHED_OTHER×1,?×1" {
		t.Errorf("v2 container: %+v (%s)", c, c.PolicySummary())
	}
	f.cgroupFiles("/rt/mixed", map[string]string{"cpu.max": "50000 100000"})
	if q := f.list().Containers[0].Quota; q != "50000/100000" {
		t.Errorf("v2 quota %q", q)
	}
}

func TestListEmptyAndJSON(t *testing.T) {
	f := newFake(t, false)
	var b bytes.Buffer
	f.list().WriteText(&b)
	if want := "no real-time containers (" + f.state + " does not exist yet: no RT container has run since boot with this state_dir)\n"; b.String() != want {
		t.Errorf("no state dir: %q, want %q", b.String(), want)
	}
	if err := os.MkdirAll(f.state, 0o755); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	f.list().WriteText(&b)
	if want := "no real-time containers (no claims in " + f.state + ")\n"; b.String() != want {
		t.Errorf("empty state dir: %q, want %q", b.String(), want)
	}
	f.shim(500, 9)
	f.claim(cgroupfix.Claim{Namespace: "default", ID: "a", Leaf: "/a", RuntimeUS: 1, PeriodUS: 2, Owner: cgroupfix.Owner{PID: 500, StartTime: 9}})
	f.cgroupFiles("/a", map[string]string{"cgroup.procs": "3", "cpu.rt_runtime_us": "1", "cpu.rt_period_us": "2"})
	f.sched[3] = Sched{Policy: "SCHED_FIFO", Priority: 1}
	b.Reset()
	if err := f.list().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	cs, _ := got["containers"].([]any)
	if got["state_dir"] != f.state || len(cs) != 1 {
		t.Fatalf("json: %s", b.String())
	}
	c := cs[0].(map[string]any)
	for _, k := range []string{"namespace", "id", "cgroup", "cgroup_exists", "processes", "rt_budget", "claimed_rt_budget",
		"exempt_quota", "cpu_quota", "shim"} {
		if _, ok := c[k]; !ok {
			t.Errorf("container JSON lacks %q: %s", k, b.String())
		}
	}
	p := c["processes"].([]any)[0].(map[string]any)
	if p["pid"] != 3.0 || p["sched"].(map[string]any)["policy"] != "SCHED_FIFO" {
		t.Errorf("process JSON: %v", p)
	}
}

// TestListNamedStateDir: a state dir the operator names must exist and be a directory.
func TestListNamedStateDir(t *testing.T) {
	f := newFake(t, false)
	_, err := List(Host{ProcRoot: f.proc, StateDir: f.state, StateDirNamed: true})
	if err == nil || !strings.Contains(err.Error(), "state dir "+f.state+" does not exist: name the state_dir") {
		t.Errorf("missing named state dir: %v", err)
	}
	f.write(f.state, "a file")
	for _, named := range []bool{true, false} {
		_, err := List(Host{ProcRoot: f.proc, StateDir: f.state, StateDirNamed: named})
		if err == nil || !strings.Contains(err.Error(), "is not a directory") {
			t.Errorf("state dir that is a file (named %v): %v", named, err)
		}
	}
	if err := os.Remove(f.state); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.state, 0o755); err != nil {
		t.Fatal(err)
	}
	if r, err := List(Host{ProcRoot: f.proc, StateDir: f.state, StateDirNamed: true}); err != nil || !r.StateDirExists {
		t.Errorf("existing named state dir: %+v, %v", r, err)
	}
}

func TestListUnreadableState(t *testing.T) {
	f := newFake(t, false)
	f.write(filepath.Join(f.state, "claims"), "not a directory")
	if _, err := List(Host{ProcRoot: f.proc, StateDir: f.state}); err == nil {
		t.Error("an unreadable claims dir must be an error")
	}
}

// TestOrphan: a claim whose shim is gone while processes still run in its cgroup is shown as
// orphaned, with the command that finishes it (issue 10 point 9).
func TestOrphan(t *testing.T) {
	f := newFake(t, false)
	f.shim(600, 1)
	f.claim(cgroupfix.Claim{Namespace: "default", ID: "orph", Leaf: "/default/orph", RuntimeUS: 40000, PeriodUS: 1000000,
		Owner: cgroupfix.Owner{PID: 600, StartTime: 2}}) // pid 600 was reused: the shim is gone
	f.cgroupFiles("/default/orph", map[string]string{"cgroup.procs": "77", "cpu.rt_runtime_us": "40000", "cpu.rt_period_us": "1000000"})
	f.sched[77] = Sched{Policy: "SCHED_FIFO", Priority: 50}
	r := f.list()
	if c := r.Containers[0]; !c.Orphan || c.Shim.Alive {
		t.Fatalf("not reported orphaned: %+v", c)
	}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{"gone (pid 600), ORPHANED", "default/orph is orphaned", "rtshim reap default orph"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	// Alive shim, or no process: not orphaned.
	f.shim(600, 2)
	if f.list().Containers[0].Orphan {
		t.Error("a claim with a live shim reported orphaned")
	}
}

// TestPodBandwidth: with the kubelet's /kubepods on a v1 hierarchy, status shows the node's
// rtshim.io/rt-bandwidth figure, the one rtshim device-plugin advertises.
func TestPodBandwidth(t *testing.T) {
	f := newFake(t, false)
	f.cgroupFiles("/", map[string]string{"cpu.rt_runtime_us": "950000", "cpu.rt_period_us": "1000000"})
	f.cgroupFiles("/kubepods", map[string]string{"cpu.rt_runtime_us": "100000", "cpu.rt_period_us": "1000000"})
	f.cgroupFiles("/kubepods/pod1", map[string]string{"cpu.rt_runtime_us": "100000", "cpu.rt_period_us": "1000000"})
	f.cgroupFiles("/kubepods/pod1/c", map[string]string{"cpu.rt_runtime_us": "100000", "cpu.rt_period_us": "1000000", "cgroup.procs": "5"})
	f.shim(500, 9)
	f.claim(cgroupfix.Claim{Namespace: "k8s.io", ID: "c", Leaf: "/kubepods/pod1/c", RuntimeUS: 100000, PeriodUS: 1000000,
		AllocatedUS: 100000, Owner: cgroupfix.Owner{PID: 500, StartTime: 9}})
	r := f.list()
	if r.Pods == nil || r.Pods.FreeUS != 850000 || r.Pods.AllocatedUS != 100000 || r.Pods.Units != 950 {
		t.Fatalf("pod bandwidth %+v, want 850000 free, 100000 allocated, 950 units", r.Pods)
	}
	var b bytes.Buffer
	r.WriteText(&b)
	if !strings.Contains(b.String(), "950 units of rtshim.io/rt-bandwidth allocatable: 850000 µs per second free") {
		t.Errorf("text:\n%s", b.String())
	}
}
