package tuning

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

var ctx = context.Background()

func live() cgroupfix.Owner { return cgroupfix.OwnerOf("/proc", os.Getpid()) }

func holder(id string, t oci.Tuning) *Holder {
	return &Holder{Namespace: "ns", ID: id, Tuning: t, Owner: live()}
}

// run reserves, "creates" the container's cgroup as runc does, and applies.
func run(t *testing.T, f *fakeHost, m *Manager, h *Holder, leaf string) {
	t.Helper()
	if err := m.Reserve(ctx, h); err != nil {
		t.Fatalf("reserve %s: %v", h.ID, err)
	}
	f.container(leaf, h.Tuning.CPUs)
	if err := m.Apply(ctx, h.Namespace, h.ID, leaf); err != nil {
		t.Fatalf("apply %s: %v", h.ID, err)
	}
}

// stop is runc delete, then the release.
func stop(t *testing.T, f *fakeHost, m *Manager, h *Holder, leaf string) {
	t.Helper()
	f.removeContainer(leaf)
	if err := m.Release(ctx, h.Namespace, h.ID); err != nil {
		t.Fatalf("release %s: %v", h.ID, err)
	}
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// TestEveryKnob: one container with every knob: each file holds what it asked while it runs,
// and everything holds its old value after, the records gone.
func TestEveryKnob(t *testing.T) {
	f := newFakeHost(t, 4)
	m := f.manager()
	ib := &fakeIrqbalance{socket: "/run/irqbalance/irqbalance7.sock", banned: nil}
	m.Irqbalance = ib
	f.container("/k8s/pod", "")
	before := f.snapshot()
	h := holder("a", oci.Tuning{CPUs: "2-3", Exclusive: true, IRQ: oci.IRQDisable, ResumeLatency: oci.LatencyNone, Governor: "performance"})
	run(t, f, m, h, "/k8s/pod/a")

	expect(t, "partition", f.cg("/k8s/pod/a", filePartition), "root")
	for _, cg := range []string{"/k8s", "/k8s/pod", "/k8s/pod/a"} {
		expect(t, cg+" exclusive", f.cg(cg, fileExclusive), "2-3")
	}
	expect(t, "IRQ 9", f.read(irqRootFile("9")), "0-1")
	expect(t, "IRQ 24", f.read(irqRootFile("24")), "0-1")
	expect(t, "IRQ 25, pinned to CPU 2 alone, goes to the others", f.read(irqRootFile("25")), "0-1")
	expect(t, "per-CPU IRQ 0 stays", f.read(irqRootFile("0")), "0-3")
	expect(t, "default affinity", f.read(irqDefaultPath), "00000003")
	expect(t, "irqbalance banned", ib.banned.String(), "2-3")
	for _, c := range []int{2, 3} {
		expect(t, "latency", f.read(cpuPath(c, latencyFile)), "n/a")
		expect(t, "governor", f.read(cpuPath(c, governorFile)), "performance")
	}
	expect(t, "CPU 1 untouched", f.read(cpuPath(1, latencyFile)), "0")

	stop(t, f, m, h, "/k8s/pod/a")
	if after := f.snapshot(); after != before {
		t.Errorf("host not given back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	expect(t, "irqbalance banned after", ib.banned.String(), "")
	assertNoRecords(t, m)
}

// kill makes h's recorded owner a process that is gone, as when its shim was SIGKILLed.
func kill(t *testing.T, m *Manager, h *Holder) *Holder {
	t.Helper()
	rec, err := m.rec.loadHolder(h.Namespace, h.ID)
	if err != nil || rec == nil {
		t.Fatalf("holder of %s: %v", h.ID, err)
	}
	rec.Owner = cgroupfix.Owner{PID: 1 << 22, StartTime: 1}
	if err := m.rec.saveHolder(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func assertNoRecords(t *testing.T, m *Manager) {
	t.Helper()
	hs, err1 := m.rec.holders()
	bs, err2 := m.rec.baselines()
	if len(hs) > 0 || len(bs) > 0 || err1 != nil || err2 != nil {
		t.Errorf("records left: %d holders, %d baselines (%v, %v)", len(hs), len(bs), err1, err2)
	}
}

// TestOverlapping: containers sharing CPUs: each file holds what they need together (the
// strictest latency, the union of banned CPUs); the last one out restores.
func TestOverlapping(t *testing.T) {
	f := newFakeHost(t, 4)
	m := f.manager()
	f.container("/ns", "")
	before := f.snapshot()
	a := holder("a", oci.Tuning{CPUs: "1-2", IRQ: oci.IRQDisable, ResumeLatency: "50"})
	b := holder("b", oci.Tuning{CPUs: "2-3", IRQ: oci.IRQDisable, ResumeLatency: oci.LatencyNone})
	run(t, f, m, a, "/ns/a")
	run(t, f, m, b, "/ns/b")
	expect(t, "CPU 1 latency", f.read(cpuPath(1, latencyFile)), "50")
	expect(t, "CPU 2 latency, the strictest", f.read(cpuPath(2, latencyFile)), "n/a")
	expect(t, "IRQ 9", f.read(irqRootFile("9")), "0")
	stop(t, f, m, a, "/ns/a")
	expect(t, "CPU 1 latency after a", f.read(cpuPath(1, latencyFile)), "0")
	expect(t, "CPU 2 latency after a", f.read(cpuPath(2, latencyFile)), "n/a")
	expect(t, "IRQ 9 after a", f.read(irqRootFile("9")), "0-1")
	expect(t, "IRQ 25 after a (pinned to 2, b still bans it)", f.read(irqRootFile("25")), "0-1")
	stop(t, f, m, b, "/ns/b")
	if after := f.snapshot(); after != before {
		t.Errorf("host not given back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	assertNoRecords(t, m)
}

// TestConflicts: exclusive CPUs are refused to a second container, naming both; so is a
// governor that differs on a shared CPU, and a request that leaves the host no CPU.
func TestConflicts(t *testing.T) {
	f := newFakeHost(t, 4)
	m := f.manager()
	run(t, f, m, holder("owner", oci.Tuning{CPUs: "2", Exclusive: true}), "/ns/owner")
	run(t, f, m, holder("gov", oci.Tuning{CPUs: "3", Governor: "performance"}), "/ns/gov")
	for _, tc := range []struct {
		h    *Holder
		want []string
		is   func(error) bool
	}{
		{holder("b", oci.Tuning{CPUs: "1-2", Exclusive: true}), []string{"container ns/b asks for CPUs 2", "container ns/owner holds CPUs 2 exclusively"}, errdefs.IsConflict},
		{holder("c", oci.Tuning{CPUs: "2", ResumeLatency: "0"}), []string{"ns/c", "ns/owner holds CPUs 2 exclusively"}, errdefs.IsConflict},
		{holder("d", oci.Tuning{CPUs: "3", Governor: "powersave"}), []string{"governor powersave on CPUs 3, where container ns/gov set performance"}, errdefs.IsConflict},
		{holder("e", oci.Tuning{CPUs: "3", Exclusive: true}), []string{"ns/e asks for CPUs 3 exclusively, but container ns/gov tunes CPUs 3"}, errdefs.IsConflict},
		{holder("f", oci.Tuning{CPUs: "0-1,3", Exclusive: true}), []string{"ns/gov tunes CPUs 3"}, errdefs.IsConflict},
		{holder("g", oci.Tuning{CPUs: "7", Exclusive: true}), []string{"CPUs 7 are not online"}, errdefs.IsFailedPrecondition},
		{holder("h", oci.Tuning{CPUs: "1", Governor: "ondemand"}), []string{"CPU 1's cpufreq driver offers performance schedutil powersave, not ondemand"}, errdefs.IsFailedPrecondition},
	} {
		err := m.Reserve(ctx, tc.h)
		if err == nil || !tc.is(err) {
			t.Errorf("%s: %v", tc.h.ID, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.h.ID, err, w)
			}
		}
		if h, _ := m.rec.loadHolder("ns", tc.h.ID); h != nil {
			t.Errorf("%s: refused, but recorded", tc.h.ID)
		}
	}
	// Shared CPUs with the same governor are fine.
	run(t, f, m, holder("gov2", oci.Tuning{CPUs: "3", Governor: "performance"}), "/ns/gov2")

	small := newFakeHost(t, 2)
	err := small.manager().Reserve(ctx, holder("all", oci.Tuning{CPUs: "0-1", Exclusive: true}))
	if !errdefs.IsResourceExhausted(err) || !strings.Contains(fmt_(err), "would leave no CPU of 0-1 to the host") {
		t.Errorf("all CPUs exclusive: %v", err)
	}
}

func fmt_(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestUnmovableIRQ: an IRQ the kernel keeps on its CPU (EIO) is skipped, not a failure.
func TestUnmovableIRQ(t *testing.T) {
	f := newFakeHost(t, 4)
	f.perCPU[24] = true
	m := f.manager()
	h := holder("a", oci.Tuning{CPUs: "3", IRQ: oci.IRQDisable})
	run(t, f, m, h, "/ns/a")
	expect(t, "IRQ 24 (per-CPU)", f.read(irqRootFile("24")), "0-3")
	expect(t, "IRQ 9", f.read(irqRootFile("9")), "0-2")
	if b, _ := m.rec.loadBaseline(Target{Kind: kindIRQ, Path: irqRootFile("24"), CPU: -1}); b != nil {
		t.Error("a baseline is kept for an IRQ that was never changed")
	}
	stop(t, f, m, h, "/ns/a")
	assertNoRecords(t, m)
}

// TestHousekeeping: the first CPU and its hyper-thread sibling keep their interrupts.
func TestHousekeeping(t *testing.T) {
	f := newFakeHost(t, 4)
	f.file(cpuPath(1, "topology/thread_siblings_list"), "1,3")
	m := f.manager()
	h := holder("a", oci.Tuning{CPUs: "1-3", IRQ: oci.IRQHousekeeping})
	run(t, f, m, h, "/ns/a")
	expect(t, "IRQ 9", f.read(irqRootFile("9")), "0-1,3")
	stop(t, f, m, h, "/ns/a")
}

// TestPartitionRefused: the kernel refuses a partition whose CPUs a sibling lists (EINVAL): the
// container fails with the reason, and its release gives everything back.
func TestPartitionRefused(t *testing.T) {
	f := newFakeHost(t, 4)
	f.remote = false // Linux < 6.7: no cpuset.cpus.exclusive
	m := f.manager()
	f.container("/rt", "1-3")
	f.container("/rt/other", "2")
	before := f.snapshot()
	h := holder("a", oci.Tuning{CPUs: "2", Exclusive: true})
	if err := m.Reserve(ctx, h); err != nil {
		t.Fatal(err)
	}
	f.container("/rt/a", "2")
	err := m.Apply(ctx, "ns", "a", "/rt/a")
	if err == nil || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "below a parent that is one: /rt has cpuset.cpus.partition=\"member\"") {
		t.Fatalf("partition below a non-partition parent: %v", err)
	}
	if err := m.Release(ctx, "ns", "a"); err != nil {
		t.Fatal(err)
	}
	// The operator made /rt a partition root: a sibling listing CPU 2 still makes it EINVAL.
	f.setCg("/rt", filePartition, "root")
	if err := m.Reserve(ctx, h); err != nil {
		t.Fatal(err)
	}
	err = m.Apply(ctx, "ns", "a", "/rt/a")
	if err == nil || !strings.Contains(err.Error(), "refused cpuset.cpus.partition=root on cgroup /rt/a (EINVAL)") {
		t.Fatalf("non-exclusive partition: %v", err)
	}
	if err := m.Release(ctx, "ns", "a"); err != nil {
		t.Fatal(err)
	}
	f.removeContainer("/rt/other")
	if err := m.Reserve(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(ctx, "ns", "a", "/rt/a"); err != nil {
		t.Fatalf("partition below a partition root, CPUs of its own: %v", err)
	}
	expect(t, "partition", f.cg("/rt/a", filePartition), "root")
	stop(t, f, m, h, "/rt/a")
	_ = before
	assertNoRecords(t, m)
}

// TestKilledShim: a holder whose shim died and whose container is gone is released by the
// next lifecycle's sweep, and by a reservation it stands in the way of.
func TestKilledShim(t *testing.T) {
	f := newFakeHost(t, 4)
	m := f.manager()
	f.container("/ns", "")
	before := f.snapshot()
	h := holder("dead", oci.Tuning{CPUs: "2", Exclusive: true, IRQ: oci.IRQDisable, ResumeLatency: "10"})
	run(t, f, m, h, "/ns/dead")
	kill(t, m, h)
	// The container still runs (its cgroup has a process): not stale.
	if err := os.WriteFile(f.cgroup+"/ns/dead/cgroup.procs", []byte("4242\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Sweep(ctx)
	expect(t, "latency while the orphan runs", f.read(cpuPath(2, latencyFile)), "10")
	f.removeContainer("/ns/dead")
	// A reservation of CPU 2 finds it in the way, and releases it first.
	b := holder("next", oci.Tuning{CPUs: "2", Exclusive: true})
	if err := m.Reserve(ctx, b); err != nil {
		t.Fatalf("reserve past a dead shim's holder: %v", err)
	}
	if err := m.Release(ctx, "ns", "next"); err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("host not given back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	assertNoRecords(t, m)
}

// TestCrashDuringRelease: a release that died half-way (holder marked releasing, some files
// back) is finished by the next sweep.
func TestCrashDuringRelease(t *testing.T) {
	f := newFakeHost(t, 4)
	m := f.manager()
	f.container("/ns", "")
	before := f.snapshot()
	h := holder("a", oci.Tuning{CPUs: "3", IRQ: oci.IRQDisable, Governor: "performance"})
	run(t, f, m, h, "/ns/a")
	f.removeContainer("/ns/a")
	rec := kill(t, m, h)
	rec.Releasing = true
	_ = m.rec.saveHolder(rec)
	m.Sweep(ctx)
	if after := f.snapshot(); after != before {
		t.Errorf("host not given back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	assertNoRecords(t, m)
}

// TestV1: an exclusive cpuset with load balancing off; the kernel refuses it below a parent
// that is not exclusive.
func TestV1(t *testing.T) {
	f := newFakeHost(t, 4)
	f.v1 = true
	f.cgroupDir("/")
	m := f.manager()
	h := holder("a", oci.Tuning{CPUs: "2", Exclusive: true, NoLoadBalance: true})
	if err := m.Reserve(ctx, h); err != nil {
		t.Fatal(err)
	}
	f.container("/rt/a", "2")
	err := m.Apply(ctx, "ns", "a", "/rt/a")
	if err == nil || !strings.Contains(err.Error(), "only below an exclusive parent") || !strings.Contains(err.Error(), "cpuset.cpu_exclusive=1 on /rt") {
		t.Fatalf("v1 exclusive below a shared parent: %v", err)
	}
	_ = m.Release(ctx, "ns", "a")
	f.setCg("/rt", "cpuset.cpu_exclusive", "1")
	before := f.snapshot()
	_ = m.Reserve(ctx, h)
	if err := m.Apply(ctx, "ns", "a", "/rt/a"); err != nil {
		t.Fatal(err)
	}
	expect(t, "cpu_exclusive", f.cg("/rt/a", "cpuset.cpu_exclusive"), "1")
	expect(t, "sched_load_balance", f.cg("/rt/a", "cpuset.sched_load_balance"), "0")
	if err := m.Release(ctx, "ns", "a"); err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(); after != before {
		t.Errorf("not given back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
