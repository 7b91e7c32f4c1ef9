package harness

import "strings"

// DaemonConfig is a private containerd's config.toml, with {{dir}} standing for its
// directory: CRI and the plugins that write outside that directory (NRI's socket in
// /var/run/nri, "opt" in /opt/containerd) are off. Config version 3 is what containerd 2.0 and
// later read. LaunchContainerd completes it (configFor); k8stest builds its node's from it.
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

// daemonConfigV1 is DaemonConfig for containerd 1.x (the 1.7 that Docker ≤ 28 ships, which
// the Docker tests run), which reads config version 2 and has neither the CRI plugins of 2.x
// nor the pod sandbox controller.
const daemonConfigV1 = `version = 2
root = "{{dir}}/root"
state = "{{dir}}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
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

// socketDirConfig, for containerd ≥ 2.3, moves the sockets of shims built with containerd ≥
// 2.3 libraries under the daemon's dir; older shims use /run/containerd/s regardless, and
// older daemons have no socket_dir.
const socketDirConfig = `
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{{dir}}/s"
`

// SuiteConfig is the rtshim config of the host tiers' shims and runc-rt (Env.ShimConfig, which
// Main sets; through $RTSHIM_CONFIG, which they inherit) unless Options.Env names another, and
// of a container unless its runtime options name one (ConfigPath): the kernel's limits rather
// than the default ones, so that the tests of mechanisms (grant mode's CAP_SYS_NICE, large budgets, RTSHIM_
// variables, priority 99) are not tests of the defaults. The tests that load
// contrib/rtshim.toml (TestCRI, TestPodman, TestDocker's ConfigPath form) run with those.
const SuiteConfig = `[limits]
max_priority = 99
min_nice = -20
max_rt_runtime_us = 950000
max_pod_rt_runtime_us = 950000
min_rt_runtime_us = 1
honor_env = true
`

// criPlugins are the plugins Options.CRI takes off DaemonConfig's disabled_plugins.
var criPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
}

// nriPlugin is the NRI plugin Options.NRI takes off DaemonConfig's disabled_plugins, and
// nriConfig its config: socket and plugin directories in the daemon's dir, not /var/run/nri
// and /opt/nri. Only CRI containers go through NRI in containerd.
const (
	nriPlugin = "io.containerd.nri.v1.nri"
	nriConfig = `
[plugins."io.containerd.nri.v1.nri"]
  socket_path = "{{dir}}/nri.sock"
  plugin_path = "{{dir}}/` + nriPluginDir + `"
  plugin_config_path = "{{dir}}/nri/conf.d"
`
	nriPluginDir = "nri/plugins"
)

// configFor is the config.toml of a daemon in dir: DaemonConfig (daemonConfigV1 for
// containerd 1.x), with CRI and NRI if asked, the socket_dir of daemons that have one, and
// extra TOML (which must not repeat those tables).
func configFor(dir string, version Release, cri, nri bool, extra []string) string {
	config := DaemonConfig
	if version.Major < 2 {
		config = daemonConfigV1
	}
	if cri {
		for _, p := range criPlugins {
			config = strings.Replace(config, "  \""+p+"\",\n", "", 1)
		}
	}
	if nri {
		config = strings.Replace(config, "  \""+nriPlugin+"\",\n", "", 1) + nriConfig
	}
	if version.AtLeast(2, 3) {
		config += socketDirConfig
	}
	return strings.ReplaceAll(config, "{{dir}}", dir) + strings.Join(extra, "\n")
}
