package rtcontainer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gorunc "github.com/containerd/go-runc"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/oci"
)

// fakeProc writes <root>/<pid>/stat with the given start time (field 22).
func fakeProc(t *testing.T, root string, pid int, start uint64) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Fields 3 to 21, then the start time: the command name holds a space and a ')'.
	stat := fmt.Sprintf("%d (runc:[2:INIT] x)) S %s %d 0\n", pid, strings.Repeat("0 ", 18), start)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A record keeps the init create found; Lookup gives its PID back only while the same process
// (PID and start time) runs, so that start needs no `runc state` and never takes a reused PID.
func TestLookupInitPID(t *testing.T) {
	proc, stateDir := t.TempDir(), t.TempDir()
	h := Host{ProcRoot: proc}
	const ns, id, pid = "runc:/run/x", "c1", 4242
	fakeProc(t, proc, pid, 777)
	c := &Container{Namespace: ns, ID: id, Req: &oci.Request{Mode: oci.ModeApply}, Pid: pid, host: h,
		bundle: t.TempDir(), stateDir: stateDir}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateDir = stateDir
	lookup := func() *Container {
		t.Helper()
		got, err := h.Lookup(context.Background(), Options{Namespace: ns, ID: id, Config: cfg})
		if err != nil || got == nil {
			t.Fatalf("Lookup: %v, %v", got, err)
		}
		return got
	}
	if got := lookup(); got.Pid != pid {
		t.Errorf("init running: Lookup's pid %d, want %d", got.Pid, pid)
	}
	fakeProc(t, proc, pid, 778) // the PID now names another process
	if got := lookup(); got.Pid != 0 {
		t.Errorf("PID reused: Lookup's pid %d, want 0 (ask the runtime)", got.Pid)
	}
	os.RemoveAll(filepath.Join(proc, strconv.Itoa(pid)))
	if got := lookup(); got.Pid != 0 {
		t.Errorf("init gone: Lookup's pid %d, want 0", got.Pid)
	}
}

func TestKnows(t *testing.T) {
	proc, stateDir := t.TempDir(), t.TempDir()
	h := Host{ProcRoot: proc}
	const ns = "runc:/run/x"
	if h.Knows(stateDir, ns, "c1") {
		t.Error("empty state dir knows c1")
	}
	c := &Container{Namespace: ns, ID: "c1", Req: &oci.Request{}, host: h, bundle: t.TempDir(), stateDir: stateDir}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if !h.Knows(stateDir, ns, "c1") || h.Knows(stateDir, ns, "c2") || h.Knows(stateDir, "runc:/run/y", "c1") {
		t.Error("a record names c1 in ns only")
	}
	// A claim without a record: a create that died between the grant and the record.
	if err := (cgroupfix.State{Dir: stateDir}).SaveClaim(&cgroupfix.Claim{Namespace: ns, ID: "c2", Leaf: "/x/c2"}); err != nil {
		t.Fatal(err)
	}
	if !h.Knows(stateDir, ns, "c2") {
		t.Error("a claim names c2")
	}
}

// runc create's --pid-file gives the init's PID; without one (or an unreadable one) runc state
// is asked, here a runc that does not exist.
func TestRuncInitPIDFromPidFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "init.pid")
	if err := os.WriteFile(p, []byte("4242"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := &gorunc.Runc{Command: filepath.Join(t.TempDir(), "no-runc")}
	if pid, err := (Runc{Runc: missing, ID: "c1", PidFile: p}).InitPID(context.Background()); err != nil || pid != 4242 {
		t.Errorf("from the pid file: %d, %v", pid, err)
	}
	for _, r := range []Runc{{Runc: missing, ID: "c1"}, {Runc: missing, ID: "c1", PidFile: p + ".none"}} {
		if pid, err := r.InitPID(context.Background()); err == nil {
			t.Errorf("pid file %q: %d without runc state", r.PidFile, pid)
		}
	}
}

// SweepRecords gives back a container whose runc-rt was killed in its delete (a pending mark
// whose writer is gone) once runc no longer has it, and at each interval any record of a
// container runc no longer has; never one whose command still runs, whose init runs, that runc
// still has, or whose claim it cannot judge.
func TestSweepRecords(t *testing.T) {
	ctx := context.Background()
	proc, stateDir := t.TempDir(), t.TempDir()
	h := Host{ProcRoot: proc}
	const ns = "runc:/run/x"
	fakeProc(t, proc, 100, 1) // a live runc-rt
	fakeProc(t, proc, 200, 2) // a live init
	save := func(id string, init int) {
		t.Helper()
		c := &Container{Namespace: ns, ID: id, Req: &oci.Request{}, Pid: init, host: h, bundle: t.TempDir(), stateDir: stateDir}
		if err := c.save(); err != nil {
			t.Fatal(err)
		}
	}
	mark := func(id string, writer cgroupfix.Owner) {
		t.Helper()
		b, _ := json.Marshal(pendingMark{Namespace: ns, ID: id, Owner: writer})
		if err := os.MkdirAll(pendingDir(stateDir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pendingPath(stateDir, ns, id), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	dead := cgroupfix.Owner{PID: 300, StartTime: 3}
	stillThere := map[string]bool{"kept-by-runc": true}
	gone := func(_, id string) bool { return !stillThere[id] }

	save("running-delete", 0)
	mark("running-delete", cgroupfix.Owner{PID: 100, StartTime: 1})
	save("killed-delete", 0)
	mark("killed-delete", dead)
	save("kept-by-runc", 0)
	mark("kept-by-runc", dead)
	save("claimed", 0)
	mark("claimed", dead)
	if err := (cgroupfix.State{Dir: stateDir}).SaveClaim(&cgroupfix.Claim{Namespace: ns, ID: "claimed", Leaf: "/x/claimed", RuntimeUS: 1000, PeriodUS: 1000000}); err != nil {
		t.Fatal(err)
	}
	save("init-runs", 200)
	save("unmarked", 0)
	// A recent sweep: only the marks are looked at.
	if err := os.WriteFile(filepath.Join(stateDir, "wrapper", "swept"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.SweepRecords(ctx, stateDir, gone)
	for id, want := range map[string][2]bool{ // record, mark
		"running-delete": {true, true},   // its delete still runs
		"killed-delete":  {false, false}, // given back
		"kept-by-runc":   {true, false},  // runc still has it: its own delete takes over
		"claimed":        {true, true},   // no cpu hierarchy here to judge the claim by: left, tried again
		"init-runs":      {true, false},
		"unmarked":       {true, false}, // not before the interval
	} {
		if got := [2]bool{exists(recordPath(stateDir, ns, id)), exists(pendingPath(stateDir, ns, id))}; got != want {
			t.Errorf("%s: record, mark = %v, want %v", id, got, want)
		}
	}
	if !h.Holds(stateDir, ns, "claimed") {
		t.Error("a claim that could not be judged is gone")
	}
	// The interval has passed: every record is looked at.
	old := time.Now().Add(-2 * recordSweepInterval)
	if err := os.Chtimes(filepath.Join(stateDir, "wrapper", "swept"), old, old); err != nil {
		t.Fatal(err)
	}
	h.SweepRecords(ctx, stateDir, gone)
	if exists(recordPath(stateDir, ns, "unmarked")) {
		t.Error("unmarked record of a container runc no longer has: not given back at the interval")
	}
	for _, id := range []string{"init-runs", "kept-by-runc", "running-delete", "claimed"} {
		if !exists(recordPath(stateDir, ns, id)) {
			t.Errorf("%s: record removed at the interval", id)
		}
	}
}
