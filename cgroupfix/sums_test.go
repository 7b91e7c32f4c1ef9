package cgroupfix

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// grantN grants n containers of runtime µs each in /ns, named c0…c(n-1).
func grantN(t *testing.T, m *Manager, n int, runtime int64) {
	t.Helper()
	for i := range n {
		if err := m.Grant(context.Background(), claim(fmt.Sprintf("c%d", i), fmt.Sprintf("/ns/c%d", i), runtime)); err != nil {
			t.Fatalf("grant c%d: %v", i, err)
		}
	}
}

// TestGrantReleaseCostFlat: with its parent's record in place, a grant and a release read as
// many cgroup files with 200 siblings as with 5 (see childSums): what they cost under the
// host-wide lock does not grow with the containers that run.
func TestGrantReleaseCostFlat(t *testing.T) {
	ctx := context.Background()
	reads := func(n int) (grant, release int) {
		m, f := newTestManager(t)
		m.State.Swept() // no sweep in the measured release
		grantN(t, m, n, 2000)
		f.reads = 0
		if err := m.Grant(ctx, claim("x", "/ns/x", 2000)); err != nil {
			t.Fatal(err)
		}
		grant, f.reads = f.reads, 0
		if err := m.Release(ctx, "ns", "x"); err != nil {
			t.Fatal(err)
		}
		if got, want := f.runtime("/ns"), int64(n*2000); got != want {
			t.Errorf("%d siblings: /ns holds %d after the release, want %d", n, got, want)
		}
		return grant, f.reads
	}
	g5, r5 := reads(5)
	g200, r200 := reads(200)
	if g200 != g5 || r200 != r5 {
		t.Errorf("cgroup file reads, grant and release: %d and %d with 5 siblings, %d and %d with 200", g5, r5, g200, r200)
	}
}

// TestRTWritesPerGrantRelease: a grant writes the RT budget of its leaf and of the parent it
// raises, a release after BeforeDelete's Quiesce only the parent's, and Cost counts them: each
// such write makes the kernel check every task group on the host, so each is one more cost
// that grows with the cgroups there.
func TestRTWritesPerGrantRelease(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestManager(t)
	m.State.Swept()
	grantN(t, m, 3, 2000)
	if err := m.Grant(ctx, claim("x", "/ns/x", 2000)); err != nil {
		t.Fatal(err)
	}
	if got := m.Cost().RTWrites; got != 2 {
		t.Errorf("grant: %d RT writes, want 2 (the parent, the leaf's runtime; its period is the default)", got)
	}
	m.Quiesce(ctx, "ns", "x")
	if err := m.Release(ctx, "ns", "x"); err != nil {
		t.Fatal(err)
	}
	if got := m.Cost().RTWrites; got != 1 {
		t.Errorf("release after quiesce: %d RT writes, want 1 (the parent)", got)
	}
}

// TestRecordsStayExact: grants and releases in any order, made from records, leave every
// ancestor exactly where reading the children would (the same round numbers), and nothing
// behind.
func TestRecordsStayExact(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	m.State.Swept()
	before := f.snapshot()
	for i := range 6 {
		c := claim(fmt.Sprintf("p%d", i), fmt.Sprintf("/k/pod%d/c", i%2), int64(10000*(i+1)))
		c.Leaf = fmt.Sprintf("/k/pod%d/c%d", i%2, i)
		if err := m.Grant(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, cg := range []string{"/k", "/k/pod0", "/k/pod1"} {
			if !f.Exists(cg) {
				continue
			}
			cur, _ := m.readGroup(cg)
			exact, err := m.childrenSums(cg, cur.period, "", group{})
			if err != nil {
				t.Fatal(err)
			}
			if cur.runtime != exact.need() {
				t.Errorf("%s: %s holds %d, its children need %d", when, cg, cur.runtime, exact.need())
			}
		}
	}
	check("granted")
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		if err := m.Release(ctx, "ns", fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("p%d released", i))
	}
	after := f.snapshot()
	for _, cg := range []string{"/k", "/k/pod0", "/k/pod1"} {
		after = strings.ReplaceAll(after, "\n"+cg+" rt=0/1000000 quota=-1", "")
	}
	if after != before {
		t.Errorf("tree not restored:\n%s", after)
	}
	assertNoState(t, m)
}

// TestRecordMissingBudget: when a record counts less than the children hold (budget taken
// outside rtshim), the kernel refuses the write planned from it; the grant and the release
// then read the children and still come out exact.
func TestRecordMissingBudget(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	m.State.Swept()
	grantN(t, m, 3, 100000)
	rec := m.State.loadSums("/ns")
	if rec == nil {
		t.Fatal("no record of /ns after grants")
	}
	rec.Runtime -= 150000 // as if a sibling had been given budget without rtshim
	rec.Ratio -= toRatio(1000000, 150000)
	if err := m.State.saveSums(*rec); err != nil {
		t.Fatal(err)
	}
	if err := m.Grant(ctx, claim("x", "/ns/x", 100000)); err != nil {
		t.Fatalf("grant from a short record: %v", err)
	}
	if got := f.runtime("/ns"); got != 400000 {
		t.Errorf("/ns holds %d, want 400000", got)
	}
	rec = m.State.loadSums("/ns")
	rec.Runtime -= 250000
	rec.Ratio -= toRatio(1000000, 250000)
	if err := m.State.saveSums(*rec); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, "ns", "x"); err != nil {
		t.Fatalf("release from a short record: %v", err)
	}
	if got := f.runtime("/ns"); got != 300000 {
		t.Errorf("/ns holds %d after the release, want 300000", got)
	}
}

// TestRecordOfChangedParent: a record of a cgroup that no longer holds what rtshim wrote (an
// operator raised it) is not used: the grant reads the children and keeps the operator's room.
func TestRecordOfChangedParent(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	m.State.Swept()
	grantN(t, m, 2, 100000)
	if err := f.WriteFile("/ns", fileRTRuntime, "500000"); err != nil {
		t.Fatal(err)
	}
	if err := m.Grant(ctx, claim("x", "/ns/x", 100000)); err != nil {
		t.Fatal(err)
	}
	if got := f.runtime("/ns"); got != 500000 {
		t.Errorf("/ns holds %d, want the operator's 500000 (room for the new leaf)", got)
	}
}

// TestSweepRecountsRecords: records miss budget a sibling gives back outside rtshim; a sweep
// counts the children again, so the next release gives that back too. A claim's leaf counts
// at its claim's budget even at 0 (BeforeDelete), as its release will take that away.
func TestSweepRecountsRecords(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	f.add("/ns", 100000) // an operator's budget, and another program's container in it
	f.add("/ns/other", 100000)
	grantN(t, m, 3, 100000)
	if err := f.WriteFile("/ns/other", fileRTRuntime, "0"); err != nil { // given back outside rtshim
		t.Fatal(err)
	}
	if err := f.WriteFile("/ns/c0", fileRTRuntime, "0"); err != nil { // c0's BeforeDelete
		t.Fatal(err)
	}
	m.State.MarkDirty() // the next release sweeps
	if err := m.Release(ctx, "ns", "none"); err != nil {
		t.Fatal(err)
	}
	rec := m.State.loadSums("/ns")
	if rec == nil || rec.need() != 300000 {
		t.Fatalf("record of /ns after the sweep: %+v, want the 3 claims' 300000", rec)
	}
	for i, want := range []int64{200000, 100000, 100000} {
		if err := m.Release(ctx, "ns", fmt.Sprintf("c%d", i)); err != nil {
			t.Fatal(err)
		}
		if got := f.runtime("/ns"); got != want {
			t.Errorf("c%d released: /ns holds %d, want %d", i, got, want)
		}
	}
	assertNoState(t, m)
}

// TestLeafPeriodWrittenOnlyWhenItDiffers: every RT write makes the kernel check the whole task
// group tree; a new cgroup already has the global period.
func TestLeafPeriodWrittenOnlyWhenItDiffers(t *testing.T) {
	ctx := context.Background()
	m, f := newTestManager(t)
	if err := m.Grant(ctx, claim("c1", "/ns/c1", 100000)); err != nil {
		t.Fatal(err)
	}
	c := claim("c2", "/ns/c2", 50000)
	c.PeriodUS = 500000
	if err := m.Grant(ctx, c); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.writes, "\n")
	if strings.Contains(got, "/ns/c1 "+fileRTPeriod) || !strings.Contains(got, "/ns/c2 "+fileRTPeriod+"=500000") {
		t.Errorf("writes:\n%s", got)
	}
}
