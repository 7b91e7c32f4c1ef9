//go:build linux

package k8stest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtshim/rtshim/internal/harness"
)

// The contrib files the node is configured from, so that they cannot rot.
const (
	contribContainerd = "../contrib/containerd/config.toml"
	contribRtshim     = "../contrib/rtshim.toml"
	contribKubernetes = "../contrib/kubernetes/"
)

// pauseImage is the pod sandbox image: /bin/pause of the test rootfs, imported and pinned.
const pauseImage = "localhost/rtshim-k8s/pause:test"

// nodeContainerdConfig is containerd's config in the node's mount namespace, where a node has it.
const nodeContainerdConfig = "/etc/containerd/config.toml"

// nodeShimConfig is the node's rtshim config, where a node has it: the file the runtime rt names
// (contrib/containerd/config.toml's ConfigPath), the one rt-runc's shim reads by default, and
// the one the device plugin DaemonSet reads. The node starts with contrib/rtshim.toml there.
const nodeShimConfig = "/etc/containerd/rtshim.toml"

// criNamespace is the containerd namespace of CRI's containers and images.
const criNamespace = "k8s.io"

// nodeOpts are the kubelet settings a test may change (node.restartKubelet).
type nodeOpts struct {
	// cpuManagerStatic selects the CPU manager's static policy, with CPU 0 reserved for the
	// system: Guaranteed pods with integer CPUs get the others exclusively.
	cpuManagerStatic bool
}

// node is the cluster's node: a containerd with CRI and the kubelet, both in one mount
// namespace of their own (held by the holder process), as on a real node they share one.
// In it, overlays on /var/lib, /var/log and /run catch what the kubelet, CNI, runc and the
// shims write at fixed paths (/var/lib/kubelet/device-plugins, /var/log/containers,
// /run/containerd/...), overlays on /etc and /usr/local give the node installer's DaemonSet a
// node's /usr/local/bin and /etc/containerd (containerd's config is /etc/containerd/config.toml
// there), and the /proc/sys values the kubelet insists on are bind-mounted, so that nothing of
// the host changes; the namespace, and every mount in it, goes with its last process.
type node struct {
	c    *cluster
	opts nodeOpts

	holder, containerd, kubelet *proc
	address                     string // containerd's socket
	stateDir                    string // its state_dir, /run/rtshim in the node, seen from the host
	kubeletPort                 int
}

// nsScript sets up the node's mount namespace ($1 is its dir, $2 containerd's config to put at
// /etc/containerd/config.toml, $3 the rtshim config to put at /etc/containerd/rtshim.toml),
// then holds it open.
const nsScript = `set -eu
d=$1
for m in /var/lib /var/log /run /etc /usr/local; do
	n=$d/$(echo "$m" | tr / _)
	mkdir -p "$n/upper" "$n/work"
	mount -t overlay overlay -o "lowerdir=$m,upperdir=$n/upper,workdir=$n/work" "$m"
done
# The values the kubelet's protectKernelDefaults requires (it would write them otherwise).
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
	kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
	f=${kv%%=*} v=${kv#*=}
	if [ "$(cat "/proc/sys/$f")" != "$v" ]; then
		echo "$v" >"$d/sysctl.$(echo "$f" | tr / .)"
		mount --bind "$d/sysctl.$(echo "$f" | tr / .)" "/proc/sys/$f"
	fi
done
mkdir -p /etc/containerd
cp "$2" /etc/containerd/config.toml
cp "$3" /etc/containerd/rtshim.toml
touch "$d/ready"
exec sleep 2147483647
`

// inNS is cmd's argument list to run in the node's mount namespace.
func (n *node) inNS(args ...string) []string {
	return append([]string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.holder.cmd.Process.Pid), "--"}, args...)
}

func (n *node) dir(elem ...string) string {
	return filepath.Join(append([]string{n.c.dir}, elem...)...)
}

func (n *node) startNamespace(containerdConfig, shimConfig string) error {
	nsDir := n.dir("ns")
	if err := os.MkdirAll(nsDir, 0o755); err != nil {
		return err
	}
	n.holder = n.c.newProc("mount-namespace", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", nsScript, "sh", nsDir, containerdConfig, shimConfig)
	if err := n.holder.start(); err != nil {
		return err
	}
	return waitFor("the node's mount namespace", 10*time.Second, n.holder, func() error {
		_, err := os.Stat(filepath.Join(nsDir, "ready"))
		return err
	})
}

// containerdConfig is the node's config.toml: the tier's generated base with CRI on, CNI in
// the test's dirs, and contrib/containerd/config.toml's runtimes pointed at the shim under
// test (their rtshim config is the node's, nodeShimConfig, as the file names it).
func (n *node) containerdConfig() (string, error) {
	dir := n.dir("containerd")
	config := harness.DaemonConfig
	for _, p := range []string{"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox"} {
		config = strings.Replace(config, "  \""+p+"\",\n", "", 1)
	}
	config = strings.ReplaceAll(config, "{{dir}}", dir)
	config += fmt.Sprintf(`
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = %q
`, filepath.Join(dir, "s")) + harness.CRIPluginTOML(pauseImage, n.dir("cdi"), cniDir, n.dir("cni", "net.d"))

	contrib, err := os.ReadFile(contribContainerd)
	if err != nil {
		return "", err
	}
	body := string(contrib)
	for _, sub := range []struct{ old, new string }{
		{"/usr/local/bin/containerd-shim-rt-v2", filepath.Join(binDir, "containerd-shim-rt-v2")},
	} {
		// Replace the value where it is set: the file's comments name it too.
		quoted := strconv.Quote(sub.old)
		if c := strings.Count(body, quoted); c != 1 {
			return "", fmt.Errorf("%s: %s appears %d times quoted; cannot point it at the test's file", contribContainerd, quoted, c)
		}
		body = strings.Replace(body, quoted, strconv.Quote(sub.new), 1)
	}
	lines := strings.SplitAfter(body, "\n")
	i := slices.Index(lines, "version = 3\n")
	if i < 0 {
		return "", fmt.Errorf("%s: no `version = 3` line", contribContainerd)
	}
	return config + strings.Join(slices.Delete(lines, i, i+1), ""), nil
}

// cniConfig gives every pod its own network namespace with an address on a tap interface: a
// real CNI network that touches nothing in the host's network namespace (there is no CNI on
// the test hosts, and their kernel has no dummy, macvlan or ipvlan links). The kubelet reports
// the node NotReady without any network config.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "rtshim-k8s",
  "plugins": [{
    "type": "tap",
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "dataDir": %q}
  }]
}
`

func (n *node) startContainerd() error {
	// contrib/rtshim.toml as it is, at the node's nodeShimConfig: its state_dir, /run/rtshim, is
	// the node's own in the node's mount namespace (the /run overlay). Every shim of the node
	// must share one state dir (the installed config names the same), or their budget records
	// would disagree.
	shimConfig, err := filepath.Abs(contribRtshim)
	if err != nil {
		return err
	}
	if _, err := os.Stat(shimConfig); err != nil {
		return err
	}
	n.stateDir = n.dir("ns", "_run", "upper", "rtshim")
	for _, d := range []string{"containerd", "cdi", "cni/net.d"} {
		if err := os.MkdirAll(n.dir(d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(n.dir("cni", "net.d", "10-rtshim-k8s.conflist"), fmt.Appendf(nil, cniConfig, n.dir("cni", "ipam")), 0o644); err != nil {
		return err
	}
	config, err := n.containerdConfig()
	if err != nil {
		return err
	}
	configPath := n.dir("containerd", "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return err
	}
	if err := n.startNamespace(configPath, shimConfig); err != nil {
		return err
	}
	n.address = n.dir("containerd", "containerd.sock")
	n.containerd = n.c.newProc("containerd", n.inNS(filepath.Join(toolsDir, "containerd"), "--config", nodeContainerdConfig)...)
	// The shims and runc come from PATH; the rt-runc form (runc options) reads the default
	// rtshim config, nodeShimConfig, as on a node.
	n.containerd.env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "RTSHIM_CONFIG=")
	}), "PATH="+binDir+":"+toolsDir+":"+os.Getenv("PATH"))
	return n.launchContainerd()
}

func (n *node) launchContainerd() error {
	if err := n.containerd.start(); err != nil {
		return err
	}
	return waitFor("containerd", 30*time.Second, n.containerd, func() error {
		_, err := n.ctr("version")
		return err
	})
}

// restartContainerd stops containerd (SIGTERM: its shims and containers go on) and starts it
// again with the same config and state.
func (n *node) restartContainerd() error {
	if err := n.containerd.stop(30 * time.Second); err != nil {
		return err
	}
	return n.launchContainerd()
}

// ctr runs ctr against the node's containerd in CRI's namespace.
func (n *node) ctr(args ...string) (string, error) { return n.ctrIn(criNamespace, args...) }

// ctrIn runs ctr against the node's containerd in namespace ns.
func (n *node) ctrIn(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(toolsDir, "ctr"), append([]string{"--address", n.address, "--namespace", ns}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// kubeletConfig is the KubeletConfiguration this host needs; see docs/kubernetes.md.
func (n *node) kubeletConfig() string {
	cpuManager := "cpuManagerPolicy: none\n"
	if n.opts.cpuManagerStatic {
		// A short reconcile period, so that the test sees a reconcile pass soon.
		cpuManager = "cpuManagerPolicy: static\nreservedSystemCPUs: \"0\"\ncpuManagerReconcilePeriod: 2s\n"
	}
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet >= 1.35 refuses cgroup v1 unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
# Lowering its own oom_score_adj needs CAP_SYS_RESOURCE.
oomScoreAdj: 0
# Check the kernel tunables instead of writing them (they are bind-mounted in its namespace).
protectKernelDefaults: true
makeIPTablesUtilChains: false
address: 127.0.0.1
port: %d
healthzBindAddress: 127.0.0.1
healthzPort: 0
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
podLogsDir: %q
volumePluginDir: %q
serializeImagePulls: false
# The test host's disk may be fuller than a node's default thresholds allow.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
%s`, n.kubeletPort, n.c.pki.CACert, n.address, n.dir("pod-logs"), n.dir("kubelet-plugins"), cpuManager)
}

func (n *node) startKubelet() error {
	var err error
	if n.kubeletPort, err = freePort(); err != nil {
		return err
	}
	kubeconfig, err := n.c.pki.kubeconfig("kubelet", n.c.server)
	if err != nil {
		return err
	}
	configPath := n.dir("kubelet.yaml")
	if err := os.WriteFile(configPath, []byte(n.kubeletConfig()), 0o644); err != nil {
		return err
	}
	n.kubelet = n.c.newProc("kubelet", n.inNS(filepath.Join(k8sDir, "kubelet"),
		"--config", configPath, "--kubeconfig", kubeconfig,
		"--hostname-override", nodeName, "--root-dir", n.dir("kubelet"), "-v", "2")...)
	return n.kubelet.start()
}

// restartKubelet stops the kubelet and starts it again, with opts; a changed CPU manager
// policy needs the old policy's state file gone, as the kubelet's docs say.
func (n *node) restartKubelet(opts nodeOpts) error {
	if err := n.kubelet.stop(30 * time.Second); err != nil {
		return err
	}
	if opts != n.opts {
		if err := os.Remove(n.dir("kubelet", "cpu_manager_state")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		n.opts = opts
		if err := os.WriteFile(n.dir("kubelet.yaml"), []byte(n.kubeletConfig()), 0o644); err != nil {
			return err
		}
	}
	if err := n.kubelet.start(); err != nil {
		return err
	}
	return n.waitReady()
}

// waitReady waits until the node is Ready, untainted, and its kubelet is the one running now.
func (n *node) waitReady() error {
	started := time.Now().Add(-time.Second).UTC()
	return waitFor("node "+nodeName+" Ready", 120*time.Second, n.kubelet, func() error {
		out, err := n.c.kubectl("get", "node", nodeName, "-o", "json")
		if err != nil {
			return err
		}
		var nd struct {
			Spec struct {
				Taints []struct{ Key string } `json:"taints"`
			} `json:"spec"`
			Status struct {
				Conditions []struct {
					Type, Status, Reason, Message string
					LastHeartbeatTime             time.Time `json:"lastHeartbeatTime"`
				} `json:"conditions"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(out), &nd); err != nil {
			return err
		}
		for _, cond := range nd.Status.Conditions {
			if cond.Type != "Ready" {
				continue
			}
			if cond.Status != "True" {
				return fmt.Errorf("Ready=%s: %s: %s", cond.Status, cond.Reason, cond.Message)
			}
			if cond.LastHeartbeatTime.Before(started) {
				return fmt.Errorf("Ready, but last heartbeat %v is older than this kubelet", cond.LastHeartbeatTime)
			}
			if len(nd.Spec.Taints) > 0 {
				return fmt.Errorf("Ready but tainted: %v", nd.Spec.Taints)
			}
			return nil
		}
		return errors.New("no Ready condition yet")
	})
}
