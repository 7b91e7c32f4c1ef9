//go:build linux

package vmtest

// The cgroup v2 checks of runc-rt, which shares the shim's lifecycle core. They run before
// guest_test.go's (file order), so TestV2NoResidue still runs last.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// writeScript writes an executable shell script.
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runcElsewhere is a runc whose `create` puts the container under cgroup to instead of from,
// as a runtime whose cgroup driver resolves linux.cgroupsPath its own way would: it rewrites
// the bundle's config.json, then runs the real runc.
const runcElsewhere = `#!/bin/sh
prev=
for a in "$@"; do
	case $prev in --bundle | -b) bundle=$a ;; esac
	case $a in create) create=1 ;; esac
	prev=$a
done
if [ -n "$create" ]; then
	sed -i 's#\("cgroupsPath": *"\)%[1]s/#\1%[2]s/#' "${bundle:-.}/config.json" || exit 1
fi
exec %[3]s "$@"
`

// TestV2LocateRealCgroup: an RT container whose linux.cgroupsPath does not name the cgroup its
// init ends up in gets its claim and its pod's quota exemption at the real cgroup (the v2
// "locate" step after runc create: the pod guessed from the path gets its quota back), through
// runc-rt (the stock runc shim with runc-rt as its runc binary, as Docker's path runtimes and
// Podman run it) and through the shim (the same runc as the config's runc.binary_name).
func TestV2LocateRealCgroup(t *testing.T) {
	d := guest(t)
	const guessPod, realPod, podQuota = "/pod-guess", "/pod-real", "50000 100000"
	harness.MakePod(t, guessPod, podQuota)
	harness.MakePod(t, realPod, podQuota)
	dir := t.TempDir()
	env := d.Env()
	elsewhere := writeScript(t, dir, "runc-elsewhere", fmt.Sprintf(runcElsewhere, guessPod, realPod, env.Runc))
	runcRT := writeScript(t, dir, "runc-rt", fmt.Sprintf("#!/bin/sh\nRTSHIM_RUNC=%s exec %s \"$@\"\n",
		elsewhere, filepath.Join(env.BinDir, "runc-rt")))
	binaryConfig := filepath.Join(dir, "rtshim.toml")
	if err := os.WriteFile(binaryConfig, fmt.Appendf(nil, "[runc]\nbinary_name = %q\n", elsewhere), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, claimNS string
		o             harness.RunOpts
	}{
		{"runc-rt", d.WrapperNamespace(), harness.RunOpts{ID: "locate-wrapper", Runtime: harness.StockRuntime, RuncBinary: runcRT}},
		{"shim", namespace, harness.RunOpts{ID: "locate-shim", ConfigPath: binaryConfig}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.o.ID
			guessLeaf, realLeaf := path.Join(guessPod, id), path.Join(realPod, id)
			o := tc.o
			o.Annotations, o.Cgroup = with(fifo80, criContainer), guessLeaf
			o.CPUQuota, o.CPUPeriod = 20000, 100000
			o.Args = []string{"/bin/schedinfo", "-sleep", "600"}
			d.Start(t, o, "policy=SCHED_FIFO priority=80 ")

			if cg := harness.CgroupOf(t, d.PID(t, id)); cg != realLeaf {
				t.Fatalf("init's cgroup %s, want %s: runc-elsewhere did not move the container", cg, realLeaf)
			}
			if c := harness.ClaimOf(t, tc.claimNS, id); c == nil || c.Leaf != realLeaf || c.Pod != realPod {
				t.Errorf("claim %+v, want leaf %s pod %s (where the init is)", c, realLeaf, realPod)
			}
			for cg, want := range map[string]string{realLeaf: "max 100000", realPod: "max 100000", guessPod: podQuota} {
				if got := harness.CPUMax(t, cg); got != want {
					t.Errorf("%s: cpu.max %q while the container runs, want %q", cg, got, want)
				}
			}

			d.Remove(t, id)
			for _, cg := range []string{realPod, guessPod} {
				if got := harness.CPUMax(t, cg); got != podQuota {
					t.Errorf("%s: cpu.max %q after delete, want %q back", cg, got, podQuota)
				}
			}
			for _, cg := range []string{realLeaf, guessLeaf} {
				if harness.CgroupExists(cg) {
					t.Errorf("cgroup %s left behind", cg)
				}
			}
			if c := harness.ClaimOf(t, tc.claimNS, id); c != nil {
				t.Errorf("claim left after delete: %+v", c)
			}
			assertNoResidue(t)
		})
	}
}
