package rtcontainer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
)

func TestSpecAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"1.0.2-dev": false, "1.1.0": true, "1.2.1": true, "2.0": true, "1": false, "x.y": false, "1.0.0": false} {
		if got := specAtLeast(v, 1, 1); got != want {
			t.Errorf("specAtLeast(%q) = %v", v, got)
		}
	}
}

// TestForgetWithoutClaim: `containerd-shim-rt-v2 delete` runs Forget after every shim's exit;
// without a claim it neither looks for the cpu hierarchy nor takes the host-wide lock. With a
// claim it does both (and fails here, where procfs has no mount table).
func TestForgetWithoutClaim(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	h := Host{ProcRoot: t.TempDir()}
	if err := h.Forget(ctx, state, "ns", "id"); err != nil {
		t.Fatalf("forget without a claim: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("forget without a claim touched the host-wide lock (stat: %v)", err)
	}
	c := &cgroupfix.Claim{Namespace: "ns", ID: "id", Leaf: "/ns/id", RuntimeUS: 1000, PeriodUS: 1000000}
	if err := (cgroupfix.State{Dir: state}).SaveClaim(c); err != nil {
		t.Fatal(err)
	}
	if err := h.Forget(ctx, state, "ns", "id"); err == nil {
		t.Error("forget with a claim and no cpu hierarchy: no error")
	}
	if !h.Holds(state, "ns", "id") {
		t.Error("a claim that could not be released is gone")
	}
}
