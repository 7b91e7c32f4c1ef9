package rtcontainer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/config"
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

// TestPrepareBundleRecord: through the shim, a container whose spec cannot ask for anything
// gets no bundle record (it never holds anything to give back); one that may ask gets it before
// anything else, so even a Prepare that fails later (here: no cpu hierarchy) leaves what a
// delete needs. Through runc-rt (Detached) every container gets it, with its ID: runc-rt's kill
// and delete read it instead of asking runc for the bundle.
func TestPrepareBundleRecord(t *testing.T) {
	ctx := context.Background()
	h := Host{ProcRoot: t.TempDir(), BootDir: t.TempDir()}
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	for _, tc := range []struct {
		name, spec       string
		detached, record bool
	}{
		{"no request", `{"ociVersion":"1.2.0","process":{"args":["/bin/true"]}}`, false, false},
		{"annotation", `{"ociVersion":"1.2.0","process":{"args":["/bin/true"]},"annotations":{"rtshim.io/policy":"SCHED_FIFO","rtshim.io/priority":"80"}}`, false, true},
		{"runc-rt, no request", `{"ociVersion":"1.2.0","process":{"args":["/bin/true"]}}`, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(tc.spec), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := h.Prepare(ctx, Options{Namespace: "ns", ID: "id", Bundle: bundle, Config: cfg, Detached: tc.detached})
			if strings.Contains(tc.name, "no request") && (c != nil || err != nil) {
				t.Fatalf("Prepare of a container asking for nothing = %v, %v; want nil, nil", c, err)
			}
			rec, rerr := ReadBundleRecord(bundle)
			switch {
			case tc.record && rerr != nil:
				t.Errorf("no bundle record after Prepare (%v): %v", err, rerr)
			case tc.record && (rec.Namespace != "ns" || rec.ID != "id" || rec.StateDir != cfg.StateDir):
				t.Errorf("bundle record %+v, want namespace ns, ID id, state dir %s", rec, cfg.StateDir)
			case !tc.record && !errors.Is(rerr, os.ErrNotExist):
				t.Errorf("bundle record of a container asking for nothing: %+v, %v", rec, rerr)
			}
		})
	}
}
