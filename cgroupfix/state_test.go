package cgroupfix

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/statefile"
)

// The lock's holder runs at nice lockNice and gets its own weight back on unlock.
func TestLockBoostsHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raising a thread's weight needs CAP_SYS_NICE") // make test runs the unit tests as root too
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nice := func() int {
		p, err := unix.Getpriority(unix.PRIO_PROCESS, 0) // the calling thread; the syscall returns 20-nice
		if err != nil {
			t.Fatal(err)
		}
		return 20 - p
	}
	before := nice()
	unlock, err := State{Dir: t.TempDir()}.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if got := nice(); got != lockNice {
		t.Errorf("nice while holding the lock = %d, want %d", got, lockNice)
	}
	unlock()
	if got := nice(); got != before {
		t.Errorf("nice after unlock = %d, want %d as before", got, before)
	}
}

// TestRecordNames: no two containers share a record (issue 10 point 7), and a claim written
// under rtshim 0.1's ambiguous name is still found, moved and removed.
func TestRecordNames(t *testing.T) {
	if a, b := RecordName("a", "b.c"), RecordName("a.b", "c"); a == b {
		t.Errorf("a/b.c and a.b/c share the record name %q", a)
	}
	s := State{Dir: t.TempDir()}
	c1 := &Claim{Namespace: "a", ID: "b.c", Leaf: "/a/b.c", RuntimeUS: 1}
	c2 := &Claim{Namespace: "a.b", ID: "c", Leaf: "/a.b/c", RuntimeUS: 2}
	for _, c := range []*Claim{c1, c2} {
		if err := s.SaveClaim(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteClaim("a", "b.c"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadClaim("a.b", "c"); err != nil || got == nil || got.RuntimeUS != 2 {
		t.Errorf("deleting a/b.c took a.b/c's claim with it: %+v, %v", got, err)
	}

	// A legacy record: found by its content, moved on write, removed on delete.
	legacy := &Claim{Namespace: "x", ID: "y.z", Leaf: "/x/y.z", RuntimeUS: 3}
	if err := statefile.WriteJSON(s.legacyClaimPath("x", "y.z"), legacy); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadClaim("x", "y.z"); err != nil || got == nil || got.RuntimeUS != 3 {
		t.Fatalf("legacy claim not found: %+v, %v", got, err)
	}
	if got, _ := s.LoadClaim("x.y", "z"); got != nil {
		t.Errorf("x.y/z found x/y.z's legacy claim: %+v", got)
	}
	if err := s.SaveClaim(legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.legacyClaimPath("x", "y.z")); !os.IsNotExist(err) {
		t.Errorf("legacy record kept after the claim was written again: %v", err)
	}
	if err := s.DeleteClaim("x", "y.z"); err != nil {
		t.Fatal(err)
	}
	if claims, err := s.Claims(); err != nil || len(claims) != 1 {
		t.Errorf("claims left: %+v, %v", claims, err)
	}
}

// TestWriteFailureLeavesNoTemp: a state write that fails leaves no .tmp file (issue 10 point 11).
func TestWriteFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rec.json")
	if err := os.Mkdir(p, 0o700); err != nil { // rename over a directory fails
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := statefile.WriteJSON(p, map[string]int{"a": 1}); err == nil {
		t.Fatal("write over a non-empty directory succeeded")
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
}
