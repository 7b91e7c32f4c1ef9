//go:build linux

package vmtest

// Issue 10 (hardening) in the VM, where the kernel's behaviour must be real and containerd has
// CAP_SYS_RESOURCE (the VM's root, unlike the CI host's): what bounds a granted program.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtshim/rtshim/internal/harness"
)

// Configs of TestV2GrantBounded: limits below what CAP_SYS_NICE allows, and limits that allow
// everything (the only ones under which grant mode hands out CAP_SYS_NICE).
const (
	strictGrantConfig = `[defaults]
priority = 10
[limits]
allowed_policies = ["SCHED_FIFO", "SCHED_RR", "SCHED_OTHER"]
max_priority = 10
`
	allowAllConfig = `[limits]
max_priority = 99
min_nice = -20
max_rt_runtime_us = 950000
max_pod_rt_runtime_us = 950000
`
)

// grantProgram prints the container's RLIMIT_RTPRIO, then tries, as the granted program,
// priorities above and at the strict limit, SCHED_DEADLINE and a negative nice.
var grantProgram = []string{"/bin/sh", "-c", "grep 'Max realtime priority' /proc/self/limits; exec /bin/schedinfo -caps " +
	"-try fifo:11 -try fifo:99 -try deadline:500000:10000000:10000000 -try other:-5 -try fifo:10 -try rr:5"}

// TestV2GrantBounded (issue 10, point 1): grant mode cannot defeat the operator's limits. Under
// limits.max_priority = 10 (FIFO, RR, OTHER allowed) a granted program runs without
// CAP_SYS_NICE and with RLIMIT_RTPRIO 10, which runc can set here because containerd has
// CAP_SYS_RESOURCE: it sets SCHED_FIFO and SCHED_RR up to 10 itself, and SCHED_FIFO 11 or 99,
// SCHED_DEADLINE and nice -5 fail with EPERM. Under limits that allow everything it has
// CAP_SYS_NICE, and SCHED_DEADLINE and FIFO 99 work. (On the CI host, without
// CAP_SYS_RESOURCE, the strict case is refused up front: integration's TestHardeningGrantBounded.)
func TestV2GrantBounded(t *testing.T) {
	d := guest(t)
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "CapEff:") {
			t.Logf("containerd's capabilities (the guest's root): %s", strings.TrimSpace(line))
			if !harness.HasCap(t, "capeff="+strings.TrimSpace(strings.TrimPrefix(line, "CapEff:")), capSysResource) {
				t.Fatal("the guest's root lacks CAP_SYS_RESOURCE: this test needs a host where runc can set RLIMIT_RTPRIO")
			}
		}
	}
	run := func(t *testing.T, id, body string) string {
		t.Helper()
		config := filepath.Join(daemonDir, id+".toml")
		if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _, err := d.Ctr(t, append([]string{"run", "--rm", "--runtime", harness.RTRuntime, "--runtime-config-path", config,
			"--annotation", "rtshim.io/policy=SCHED_FIFO", "--annotation", "rtshim.io/mode=grant", "--rootfs", d.Env().Rootfs, id}, grantProgram...)...)
		d.Ctr(t, "containers", "delete", id)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", id, out)
		if s := harness.ParseSched(t, out); s["policy"] != "SCHED_OTHER" {
			t.Errorf("started with %s, want SCHED_OTHER", s["policy"])
		}
		return out
	}
	check := func(t *testing.T, out string, want map[string]string) {
		t.Helper()
		got := tryResults(out)
		for spec, w := range want {
			if got[spec] != w {
				t.Errorf("%s: %q, want %q", spec, got[spec], w)
			}
		}
	}

	t.Run("strict limits", func(t *testing.T) {
		out := run(t, "grant-strict", strictGrantConfig)
		if harness.HasCap(t, out, harness.CapSysNice) {
			t.Error("CAP_SYS_NICE under limits below what it allows")
		}
		if f := strings.Fields(firstLine(out, "Max realtime priority")); len(f) < 5 || f[3] != "10" || f[4] != "10" {
			t.Errorf("RLIMIT_RTPRIO: %q, want soft and hard 10", firstLine(out, "Max realtime priority"))
		}
		eperm := "error:Operation not permitted"
		check(t, out, map[string]string{"fifo:11": eperm, "fifo:99": eperm, "deadline:500000:10000000:10000000": eperm,
			"other:-5": eperm, "fifo:10": "ok", "rr:5": "ok"})
	})
	t.Run("limits that allow everything", func(t *testing.T) {
		out := run(t, "grant-all", allowAllConfig)
		if !harness.HasCap(t, out, harness.CapSysNice) {
			t.Error("CAP_SYS_NICE missing")
		}
		check(t, out, map[string]string{"fifo:11": "ok", "fifo:99": "ok", "deadline:500000:10000000:10000000": "ok", "other:-5": "ok"})
	})
	assertNoResidue(t, "grant-strict", "grant-all")
}

const capSysResource = 24

// tryResults reads /bin/schedinfo's "try=<spec> ok|error:<why>" lines: spec → "ok" or the error.
func tryResults(out string) map[string]string {
	res := map[string]string{}
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "try="); ok {
			spec, result, _ := strings.Cut(rest, " ")
			res[spec] = result
		}
	}
	return res
}

// firstLine is the first line of out that contains s, "" if none.
func firstLine(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
