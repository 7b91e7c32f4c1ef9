package cgroupfix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func newTestManager(t *testing.T) (*Manager, *fakeCPU) {
	f := newFakeCPU(t)
	return &Manager{CPU: f, State: State{Dir: t.TempDir()}, ProcRoot: "/proc"}, f
}

// self is an owner that is alive for the whole test.
func self() Owner { return Owner{PID: os.Getpid(), StartTime: ProcessStartTime("/proc", os.Getpid())} }

func claim(id, leaf string, runtime int64) *Claim {
	return &Claim{Namespace: "ns", ID: id, Leaf: leaf, RuntimeUS: runtime, PeriodUS: 1000000, Owner: self()}
}

// assertNoState fails when rtshim still records anything: every budget was given back.
func assertNoState(t *testing.T, m *Manager) {
	t.Helper()
	for _, d := range []string{"claims", "baselines", "sums"} {
		ents, _ := os.ReadDir(filepath.Join(m.State.Dir, d))
		for _, e := range ents {
			t.Errorf("state left behind: %s/%s", d, e.Name())
		}
	}
}

type setupGroup struct {
	cgroup  string
	runtime int64
}

func TestGrantReleaseRestoresBaseline(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup []setupGroup // cgroups that exist before, with their runtime, parents first
		leaf  string
		want  map[string]int64 // runtimes while granted
	}{
		{"new parent", nil, "/default/c1", map[string]int64{"/default": 100000, "/default/c1": 100000}},
		{"deep, top-down", nil, "/a/b/c/c1", map[string]int64{"/a": 100000, "/a/b": 100000, "/a/b/c": 100000}},
		{"parent with budget from the operator", []setupGroup{{"/docker", 300000}}, "/docker/c1",
			map[string]int64{"/docker": 300000, "/docker/c1": 100000}},
		{"siblings already granted", []setupGroup{{"/k", 150000}, {"/k/p1", 50000}, {"/k/p2", 100000}}, "/k/p1/c1",
			map[string]int64{"/k": 200000, "/k/p1": 100000, "/k/p1/c1": 100000, "/k/p2": 100000}},
		{"leaf fits in what the operator gave", []setupGroup{{"/k", 300000}, {"/k/p1", 200000}}, "/k/p1/c1",
			map[string]int64{"/k": 300000, "/k/p1": 200000, "/k/p1/c1": 100000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, f := newTestManager(t)
			for _, g := range tc.setup {
				f.add(g.cgroup, g.runtime)
			}
			before := f.snapshot()
			if err := m.Grant(ctx, claim("c1", tc.leaf, 100000)); err != nil {
				t.Fatal(err)
			}
			for cg, rt := range tc.want {
				if got := f.runtime(cg); got != rt {
					t.Errorf("%s: runtime %d, want %d", cg, got, rt)
				}
			}
			if err := m.Release(ctx, "ns", "c1"); err != nil {
				t.Fatal(err)
			}
			// The ancestors rtshim created stay (as runc leaves them), at runtime 0.
			after := f.snapshot()
			for _, line := range strings.Split(before, "\n") {
				if !strings.Contains(after, line) {
					t.Errorf("not restored: %q\nafter:\n%s", line, after)
				}
			}
			if f.Exists(tc.leaf) {
				t.Errorf("leaf %s left behind", tc.leaf)
			}
			for _, a := range Ancestors(tc.leaf) {
				if !strings.Contains(before, a+" ") && f.Exists(a) && f.runtime(a) != 0 {
					t.Errorf("%s keeps runtime %d", a, f.runtime(a))
				}
			}
			assertNoState(t, m)
		})
	}
}

func TestGrantRefusesWhatDoesNotFit(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/other", 900000)
	before := f.snapshot()
	err := m.Grant(ctx, claim("c1", "/default/c1", 100000))
	if !errdefs.IsResourceExhausted(err) {
		t.Fatalf("want ResourceExhausted, got %v", err)
	}
	for _, want := range []string{"cgroup /", "100000 µs per 1000000 µs", "50000 µs available"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := f.snapshot(); got != before {
		t.Errorf("tree changed:\n%s\nwant:\n%s", got, before)
	}
	assertNoState(t, m)
	// What fits is granted.
	if err := m.Grant(ctx, claim("c2", "/default/c2", 50000)); err != nil {
		t.Fatalf("50000 fits: %v", err)
	}
}

func TestGrantManyThenReleaseInAnyOrder(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	before := f.snapshot()
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	for _, id := range ids {
		if err := m.Grant(ctx, claim(id, "/pod/"+id, 100000)); err != nil {
			t.Fatalf("grant %s: %v", id, err)
		}
	}
	if got := f.runtime("/pod"); got != 900000 {
		t.Fatalf("/pod runtime %d, want 900000", got)
	}
	if err := m.Grant(ctx, claim("j", "/pod/j", 100000)); !errdefs.IsResourceExhausted(err) {
		t.Fatalf("tenth 100000 over 950000 must not fit, got %v", err)
	}
	for i, id := range []string{"e", "a", "i", "b", "h", "c", "g", "d", "f"} {
		if err := m.Release(ctx, "ns", id); err != nil {
			t.Fatal(err)
		}
		if got, want := f.runtime("/pod"), int64(100000*(len(ids)-1-i)); got != want {
			t.Errorf("after releasing %s: /pod runtime %d, want %d", id, got, want)
		}
	}
	if got := strings.ReplaceAll(f.snapshot(), "\n/pod rt=0/1000000 quota=-1", ""); got != before {
		t.Errorf("tree not restored:\n%s", got)
	}
	assertNoState(t, m)
}

func TestReleaseKeepsBudgetWhileTasksRun(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	if err := m.Grant(ctx, claim("c1", "/default/c1", 100000)); err != nil {
		t.Fatal(err)
	}
	g, _ := f.get("/default/c1")
	g.procs, g.rtTasks = "1234", true
	if err := m.Release(ctx, "ns", "c1"); err == nil || !strings.Contains(err.Error(), "still has processes") {
		t.Fatalf("want a 'still has processes' error, got %v", err)
	}
	if f.runtime("/default/c1") != 100000 || f.runtime("/default") != 100000 {
		t.Fatal("budget taken from a cgroup with running tasks")
	}
	g.procs, g.rtTasks = "", false
	if err := m.Release(ctx, "ns", "c1"); err != nil {
		t.Fatal(err)
	}
	assertNoState(t, m)
}

func TestGrantRollsBackOnKernelError(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	before := f.snapshot()
	f.failAlways["/a/b/c1 "+fileRTRuntime] = unix.EINVAL
	err := m.Grant(ctx, claim("c1", "/a/b/c1", 100000))
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "cgroup /a/b/c1") {
		t.Fatalf("want FailedPrecondition naming the cgroup, got %v", err)
	}
	if got := strings.ReplaceAll(f.snapshot(), "\n/a rt=0/1000000 quota=-1\n/a/b rt=0/1000000 quota=-1", ""); got != before {
		t.Errorf("not rolled back:\n%s", got)
	}
	assertNoState(t, m)
}

// TestGrantWaitsForRemovedSibling: a sibling cgroup removed a moment ago keeps its budget in
// the kernel for an RCU grace period, and the leaf's write fails with EINVAL meanwhile; the
// grant retries it rather than failing the create (seen after an aborted create).
func TestGrantWaitsForRemovedSibling(t *testing.T) {
	m, f := newTestManager(t)
	f.failWrite["/a/c1 "+fileRTRuntime] = unix.EINVAL
	if err := m.Grant(context.Background(), claim("c1", "/a/c1", 100000)); err != nil {
		t.Fatalf("a transient EINVAL failed the grant: %v", err)
	}
	if got := f.runtime("/a/c1"); got != 100000 {
		t.Errorf("leaf runtime %d, want 100000", got)
	}
}

func TestReconcileReleasesClaimsOfDeadShims(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	dead := claim("c1", "/default/c1", 100000)
	dead.Owner = Owner{PID: 1 << 30, StartTime: 1} // no such process
	if err := m.Grant(ctx, dead); err != nil {
		t.Fatal(err)
	}
	running := claim("c2", "/default/c2", 100000)
	running.Owner = Owner{PID: 1 << 30, StartTime: 1}
	if err := m.Grant(ctx, running); err != nil {
		t.Fatal(err)
	}
	g, _ := f.get("/default/c2")
	g.procs = "42"                                        // its container still runs: the budget stays even though the shim is gone
	if err := m.Release(ctx, "ns", "other"); err != nil { // any lifecycle's release reconciles
		t.Fatal(err)
	}
	if f.Exists("/default/c1") {
		t.Fatal("the dead shim's claim should have been reconciled away by the next release")
	}
	if got := f.runtime("/default"); got != 100000 {
		t.Errorf("/default runtime %d, want 100000", got)
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.runtime("/default/c2"); got != 100000 {
		t.Errorf("budget of a running container released: %d", got)
	}
}

func TestPodQuotaExemption(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/kubepods/pod1", 0)
	pod, _ := f.get("/kubepods/pod1")
	pod.quota = "50000"
	c1, c2 := claim("c1", "/kubepods/pod1/c1", 100000), claim("c2", "/kubepods/pod1/c2", 100000)
	c1.Pod, c1.ExemptQuota, c2.Pod, c2.ExemptQuota = "/kubepods/pod1", true, "/kubepods/pod1", true
	for _, c := range []*Claim{c1, c2} {
		if err := m.Grant(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if pod.quota != "-1" {
		t.Fatalf("pod quota %q, want -1", pod.quota)
	}
	if err := m.Release(ctx, "ns", "c1"); err != nil {
		t.Fatal(err)
	}
	if pod.quota != "-1" {
		t.Fatalf("pod quota restored while c2 still needs the exemption: %q", pod.quota)
	}
	if err := m.Release(ctx, "ns", "c2"); err != nil {
		t.Fatal(err)
	}
	if pod.quota != "50000" {
		t.Fatalf("pod quota %q, want 50000 back", pod.quota)
	}
	assertNoState(t, m)
}

// TestCorruptClaimKept: a claim record that cannot be read is kept and reported, never
// dropped: it may be another exempted container of the pod, whose quota must then stay lifted.
func TestCorruptClaimKept(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/kubepods/pod1", 0)
	pod, _ := f.get("/kubepods/pod1")
	pod.quota = "50000"
	c1 := claim("c1", "/kubepods/pod1/c1", 100000)
	c1.Pod, c1.ExemptQuota = "/kubepods/pod1", true
	if err := m.Grant(ctx, c1); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(m.State.Dir, "claims", "ns.c2.json")
	if err := os.WriteFile(bad, []byte(`{"namespace":"ns","id":"c2","pod":"/kubepods/pod1","exem`), 0o600); err != nil {
		t.Fatal(err)
	}
	claims, err := m.State.Claims()
	var corrupt *CorruptError
	if !errors.As(err, &corrupt) || len(corrupt.Records) != 1 || corrupt.Records[0] != bad || len(claims) != 1 {
		t.Fatalf("Claims() = %v, %v; want c1 and the corrupt record reported", claims, err)
	}
	if err := m.Release(ctx, "ns", "c1"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("release with a corrupt claim beside: %v", err)
	}
	if pod.quota != "-1" {
		t.Errorf("pod quota put back to %q while a corrupt claim may stand for another of its containers", pod.quota)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Errorf("corrupt record removed: %v", err)
	}
	// Once an operator removed it, the next release puts the quota back.
	os.Remove(bad)
	if err := m.Release(ctx, "ns", "c1"); err != nil || pod.quota != "50000" {
		t.Errorf("after removing the corrupt record: %v, quota %q", err, pod.quota)
	}
	assertNoState(t, m)
}

// An owner whose start time is unknown is never taken for alive: ProcessStartTime says 0 for a
// gone process too.
func TestOwnerWithoutStartTime(t *testing.T) {
	if (Owner{PID: os.Getpid()}).Alive("/proc") {
		t.Error("owner without a start time counts as alive")
	}
	if !self().Alive("/proc") {
		t.Error("this process is not alive")
	}
	m, _ := newTestManager(t)
	c := claim("c1", "/default/c1", 1000)
	c.Owner.StartTime = 0
	if err := m.Grant(context.Background(), c); err == nil {
		t.Error("a claim without the owner's start time was granted")
	}
	assertNoState(t, m)
}

func TestReleaseIsIdempotent(t *testing.T) {
	m, _ := newTestManager(t)
	for i := 0; i < 2; i++ {
		if err := m.Release(context.Background(), "ns", "never"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRatioMatchesKernel checks toRatio and runtimeFor against values worked out by hand from
// the kernel's to_ratio(): (runtime << 20) / period, truncated (kernel/sched/core.c).
func TestRatioMatchesKernel(t *testing.T) {
	for _, tc := range []struct{ period, runtime, ratio int64 }{
		{1000000, 100000, 104857}, // 104857.6
		{1000000, 950000, 996147}, // 996147.2
		{300000, 100000, 349525},  // 349525.33
		{333333, 1, 3},            // 3.1457
		{1000000, 1, 1},
		{1000000, 0, 0},
		{1000000, -1, 1 << 20}, // RUNTIME_INF
		{0, 5, 0},
	} {
		if got := toRatio(tc.period, tc.runtime); got != tc.ratio {
			t.Errorf("toRatio(%d, %d) = %d, want %d", tc.period, tc.runtime, got, tc.ratio)
		}
	}
	// runtimeFor is the smallest runtime whose ratio reaches the given one: ceil(ratio*period/2^20).
	for _, tc := range []struct{ ratio, period, runtime int64 }{
		{104857, 1000000, 100000}, // 99999.43
		{349525, 1000000, 333334}, // 333333.01: 333333 would give ratio 349524
		{996147, 1000000, 950000},
		{1, 1000000, 1},
		{0, 1000000, 0},
	} {
		if got := runtimeFor(tc.ratio, tc.period); got != tc.runtime {
			t.Errorf("runtimeFor(%d, %d) = %d, want %d", tc.ratio, tc.period, got, tc.runtime)
		}
	}
	if !errors.Is(kernelError("/x", fileRTRuntime, 1, unix.EBUSY), errdefs.ErrFailedPrecondition) {
		t.Error("EBUSY not classified")
	}
}

// TestAvailableIsWhatGrantAdmits: at the boundary Available names, Grant admits exactly that
// much and refuses one microsecond more, whatever the groups' periods (the kernel's truncated
// ratios make the boundary uneven), and the refusal names the same figure.
func TestAvailableIsWhatGrantAdmits(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		groups   []setupGroup
		leaf     string
		period   int64
		podLimit int64 // limits.max_pod_rt_runtime_us for the leaf's parent, per 1 s; 0: none
	}{
		{"empty host", nil, "/default/c", 1000000, 0},
		{"a sibling holds runtime", []setupGroup{{"/other", 333333}}, "/default/c", 1000000, 0},
		{"odd period of the request", []setupGroup{{"/other", 100000}}, "/default/c", 300000, 0},
		{"deep, parent holds some", []setupGroup{{"/kubepods", 200000}, {"/kubepods/pod1", 100000}, {"/kubepods/pod1/a", 70001}}, "/kubepods/pod1/c", 1000000, 0},
		{"full host", []setupGroup{{"/other", 950000}}, "/default/c", 1000000, 0},
		{"pod limit", []setupGroup{{"/kubepods", 300000}, {"/kubepods/pod1", 300000}, {"/kubepods/pod1/a", 250000}}, "/kubepods/pod1/c", 1000000, 400000},
		{"pod limit, odd period", []setupGroup{{"/kubepods", 200000}, {"/kubepods/pod1", 200000}, {"/kubepods/pod1/a", 100001}}, "/kubepods/pod1/c", 300000, 333333},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := newTestManager(t)
			for _, g := range tc.groups {
				f.add(g.cgroup, g.runtime)
			}
			probe := Claim{Namespace: "ns", Leaf: tc.leaf, PeriodUS: tc.period, Owner: self(), PodLimitUS: tc.podLimit, PodLimitPeriodUS: 1000000}
			avail, err := m.Available(probe)
			if err != nil {
				t.Fatal(err)
			}
			c := probe
			c.ID, c.RuntimeUS = "over", avail+1
			err = m.Grant(ctx, &c)
			if !errdefs.IsResourceExhausted(err) {
				t.Fatalf("available %d: %d µs more must be refused, got %v", avail, avail+1, err)
			}
			if want := fmt.Sprintf(" %d µs available", avail); !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not say %q", err, want)
			}
			if avail == 0 {
				return
			}
			c = probe
			c.ID, c.RuntimeUS = "fits", avail
			if err := m.Grant(ctx, &c); err != nil {
				t.Fatalf("available %d µs refused: %v", avail, err)
			}
			probe.Leaf += "2"
			if again, _ := m.Available(probe); again != 0 {
				t.Errorf("after granting all %d µs, %d µs still available", avail, again)
			}
		})
	}
}

// A budget claim whose cgroup runc already removed is released even while its shim lives on
// (a pod's shim outlives its containers): the release that should have done it failed.
func TestReconcileReleasesClaimsWhoseCgroupIsGone(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	if err := m.Grant(ctx, claim("c1", "/default/c1", 100000)); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("/default/c1", fileRTRuntime, "0"); err != nil {
		t.Fatal(err)
	}
	if err := f.Rmdir("/default/c1"); err != nil { // runc delete
		t.Fatal(err)
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.runtime("/default"); got != 0 {
		t.Errorf("/default runtime %d, want 0", got)
	}
	assertNoState(t, m)
}

// A grant that does not fit first clears what crashed shims left, then tries again.
func TestGrantReconcilesWhenBudgetIsShort(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	dead := claim("dead", "/default/dead", 900000)
	dead.Owner = Owner{PID: 1 << 30, StartTime: 1}
	if err := m.Grant(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if err := m.Grant(ctx, claim("c1", "/default/c1", 100000)); err != nil {
		t.Fatalf("the dead shim's 900000 µs should have been reclaimed: %v", err)
	}
	if f.Exists("/default/dead") || f.runtime("/default") != 100000 {
		t.Errorf("after reclaiming: %s", f.snapshot())
	}
}

// TestGrantRefusesCgroupInUse: a linux.cgroupsPath naming another container's cgroup, or an
// ancestor of one, is refused before anything is written (issue 10 point 8).
func TestGrantRefusesCgroupInUse(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	a := claim("a", "/default/a", 100000)
	if err := m.Grant(ctx, a); err != nil {
		t.Fatal(err)
	}
	f.add("/busy", 0)
	busy, _ := f.get("/busy")
	busy.procs = "4242"
	before := f.snapshot()
	for _, tc := range []struct{ leaf, want string }{
		{"/default/a", "already has an RT budget (cpu.rt_runtime_us=100000)"},
		{"/default", "already has child cgroups (a) and an RT budget"},
		{"/busy", "already has processes"},
	} {
		err := m.Grant(ctx, claim("intruder", tc.leaf, 1000))
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "linux.cgroupsPath names cgroup "+tc.leaf+", which "+tc.want) {
			t.Errorf("leaf %s: %v; want a refusal saying %q", tc.leaf, err, tc.want)
		}
		if got := f.snapshot(); got != before {
			t.Errorf("leaf %s: tree changed:\n%s\nwant:\n%s", tc.leaf, got, before)
		}
		if c, _ := m.State.LoadClaim("ns", "intruder"); c != nil {
			t.Errorf("leaf %s: the refused create left a claim", tc.leaf)
		}
	}
	// A retried create of the same container may find its own cgroup.
	if err := m.Grant(ctx, claim("a", "/default/a", 100000)); err != nil {
		t.Errorf("retry of a's own grant: %v", err)
	}
}

// TestPodBandwidth: the node's pod bandwidth is what Grant admits for a new pod, plus what
// allocated containers hold; budget taken outside Kubernetes lowers it.
func TestPodBandwidth(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	b, err := m.PodBandwidth("/kubepods", 1000000)
	if err != nil || b.Free != 950000 || b.Allocated != 0 {
		t.Fatalf("empty node: %+v, %v; want 950000 free", b, err)
	}
	c := claim("c1", "/kubepods/burstable/pod1/c1", 100000)
	c.AllocatedUS = 100000
	if err := m.Grant(ctx, c); err != nil {
		t.Fatal(err)
	}
	b, _ = m.PodBandwidth("/kubepods", 1000000)
	if b.Free != 850000 || b.Allocated != 100000 {
		t.Errorf("one allocated pod: %+v, want 850000 free and 100000 allocated", b)
	}
	// Outside Kubernetes: a Docker container takes 300000.
	f.add("/docker", 300000)
	b, _ = m.PodBandwidth("/kubepods", 1000000)
	if b.Free != 550000 || b.Allocated != 100000 {
		t.Errorf("with a Docker container: %+v, want 550000 free", b)
	}
	// What it calls free is granted, one µs more is not.
	c2 := claim("c2", "/kubepods/pod2/c2", b.Free)
	if err := m.Grant(ctx, c2); err != nil {
		t.Errorf("free %d refused: %v", b.Free, err)
	}
	if b, _ := m.PodBandwidth("/kubepods", 1000000); b.Free != 0 {
		t.Errorf("after granting all that was free: %+v", b)
	}
}

// TestSweepOnlyWhenDue: a release reads every claim (to find crashed shims' leftovers) only
// after something failed on the host or when the last sweep is sweepInterval old, so deletes do
// not cost more the more containers run; a grant that does not fit still reconciles at once.
func TestSweepOnlyWhenDue(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	m.State.Swept() // a sweep just ran
	dead := claim("c1", "/default/c1", 100000)
	dead.Owner = Owner{PID: 1 << 30, StartTime: 1}
	if err := m.Grant(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, "ns", "other"); err != nil {
		t.Fatal(err)
	}
	if !f.Exists("/default/c1") {
		t.Fatal("a release swept although nothing was due")
	}
	m.State.MarkDirty() // a failure elsewhere on the host
	if err := m.Release(ctx, "ns", "other"); err != nil {
		t.Fatal(err)
	}
	if f.Exists("/default/c1") {
		t.Error("a release after a failure did not sweep the dead shim's claim")
	}
	if m.State.Dirty() {
		t.Error("the sweep found everything and left the host marked dirty")
	}
	assertNoState(t, m)
}
