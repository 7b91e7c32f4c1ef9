// Package testenv is what the two real-component test tiers share: the cgroup v1 integration
// tests (integration/) and the cgroup v2 tests that run inside a VM (vmtest/). Only tests
// import it.
package testenv

import (
	"fmt"
	"strings"
)

// DaemonConfig is a private containerd's config.toml, with {{dir}} standing for its
// directory: CRI and the plugins that write outside that directory (NRI's socket in
// /var/run/nri, "opt" in /opt/containerd) are off. Config version 3 is what containerd 2.0 and
// later read.
const DaemonConfig = `version = 3
root = "{{dir}}/root"
state = "{{dir}}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
]

[grpc]
  address = "{{dir}}/containerd.sock"

[ttrpc]
  address = "{{dir}}/containerd.sock.ttrpc"

[debug]
  level = "debug"
`

// Sched is one line of /bin/schedinfo's output (integration/testdata/schedinfo.c) as a map:
// policy, priority, nice, reset_on_fork, runtime_ns, deadline_ns, period_ns.
type Sched map[string]string

// ParseSched returns the first "policy=..." line of out.
func ParseSched(out string) (Sched, error) {
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "policy=") {
			continue
		}
		s := Sched{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			s[k] = v
		}
		return s, nil
	}
	return nil, fmt.Errorf("no policy line in output:\n%s", out)
}
