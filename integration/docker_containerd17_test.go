//go:build linux && docker

package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// containerd17Config is the config.toml of a private containerd 1.7, which reads config
// version 2 (not 3): the plugins that write outside the daemon's dir (NRI, "opt") and CRI are
// off, as in daemonConfig.
const containerd17Config = `version = 2
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

// startContainerd17 starts a private containerd 1.7 from dir (containerd and its
// containerd-shim-runc-v2; ctr is the tests' own) with env added to its environment, torn down
// by t.Cleanup as startContainerd's daemons are. Its PATH starts with dir, so its shims are
// containerd 1.7's; then BinDir (containerd-shim-rt-v2, runc-rt) and ToolsDir (runc).
func startContainerd17(t testing.TB, dir string, env ...string) *Daemon {
	t.Helper()
	requireRoot(t)
	tmp, err := os.MkdirTemp(tempRoot, tempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Namespace: filepath.Base(tmp), Address: filepath.Join(tmp, socketName), Dir: tmp}
	t.Cleanup(func() { d.cleanup(t) })
	writeFile(t, tmp, ownerFile, strconv.Itoa(os.Getpid()))
	configPath := writeFile(t, tmp, "config.toml", strings.ReplaceAll(containerd17Config, "{{dir}}", tmp))
	if err := os.Mkdir(filepath.Join(tmp, "output"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.args = []string{filepath.Join(dir, "containerd"), "--config", configPath}
	d.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=")
	}), "PATH="+strings.Join([]string{dir, binDir, toolsDir, os.Getenv("PATH")}, ":"))
	d.env = append(d.env, env...)
	d.launch(t)
	if out := d.MustCtr(t, "version"); !strings.Contains(out, "Version:  v1.7.") {
		t.Fatalf("%s is not containerd 1.7:\n%s", d.args[0], out)
	}
	return d
}
