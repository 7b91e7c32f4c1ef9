//go:build linux

package k8stest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testInstaller is issue point 4: the node installer as an operator runs it. Import the image
// `make image` built, apply contrib/kubernetes/install/ (the installer and the device plugin),
// restart containerd as the DaemonSet's docs say, run RT pods through the installed shim and
// config (one holding an rtshim.io/rt-bandwidth allocation from the installed agent), delete
// the DaemonSets, restart containerd again, and find the node's /usr/local/bin and
// /etc/containerd as they were.
func testInstaller(t *testing.T, c *cluster) {
	n := c.node
	image, name := os.Getenv("RTSHIM_IMAGE"), os.Getenv("RTSHIM_IMAGE_NAME")
	if image == "" || name == "" {
		t.Fatal("RTSHIM_IMAGE and RTSHIM_IMAGE_NAME are not set: run the tier with `make test-k8s` (it runs `make image`)")
	}
	installDir := contribKubernetes + "install/"
	ds := loadManifests(t, installDir+"daemonset.yaml")
	if len(ds) != 1 || ds[0]["kind"] != "DaemonSet" {
		t.Fatalf("%sdaemonset.yaml: want one DaemonSet", installDir)
	}
	ctrs := field[[]any](ds[0], "spec", "template", "spec", "containers")
	if len(ctrs) != 1 || ctrs[0].(manifest)["image"] != name {
		t.Fatalf("%sdaemonset.yaml: its image is not %s (make image's IMAGE_NAME)", installDir, name)
	}
	before := snapshotCPUTree(t)
	records := c.node.recordsLeft()
	// A node without rtshim has no rtshim config either: the tier's node has contrib's (its
	// runtimes and the device plugin read it), which goes for this scenario and comes back
	// after the uninstall (which removes what the installer installed).
	if err := os.Remove(n.root() + nodeShimConfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(n.root() + nodeShimConfig); err != nil {
			n.setShimConfig(t, false)
		}
	})
	nodeBefore := n.nodeFiles(t)
	if _, err := n.ctr("images", "import", image); err != nil {
		t.Fatal(err)
	}
	deleted := false
	t.Cleanup(func() {
		c.deletePods(t, "rt-installed", "rt-installed-runc", "rt-installed-bw", "rt-uninstalled")
		if !deleted {
			if _, err := c.kubectl("delete", "-f", installDir, "--ignore-not-found", "--wait=true", "--timeout=60s"); err != nil {
				t.Error(err)
			}
			if err := n.restartContainerd(); err != nil {
				t.Error(err)
			}
		}
	})

	c.mustKubectl(t, "apply", "-f", installDir)
	var logs string
	err := waitFor("the installer's log", 60*time.Second, nil, func() (err error) {
		logs, err = c.kubectl("-n", "kube-system", "logs", "ds/rtshim-node-installer")
		if err == nil && !strings.Contains(logs, "rtshim installed") {
			err = fmt.Errorf("log so far: %q", logs)
		}
		return err
	})
	if err != nil {
		out, _ := c.kubectl("-n", "kube-system", "describe", "pods", "-l", "app.kubernetes.io/name=rtshim-node-installer")
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("installer:\n%s", logs)
	out, err := c.kubectl("-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=rtshim-node-installer", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var installers struct{ Items []pod }
	if err := json.Unmarshal([]byte(out), &installers); err != nil || len(installers.Items) != 1 {
		t.Fatalf("installer pods: %v %s", err, out)
	}
	for _, cs := range installers.Items[0].Status.ContainerStatuses {
		if cs.RestartCount != 0 {
			t.Errorf("the installer restarted %d times", cs.RestartCount)
		}
	}
	root := n.root()
	for file, src := range map[string]string{
		"/usr/local/bin/containerd-shim-rt-v2": filepath.Join(binDir, "containerd-shim-rt-v2"),
		"/usr/local/bin/runc-rt":               filepath.Join(binDir, "runc-rt"),
		"/usr/local/bin/rtshim":                filepath.Join(binDir, "rtshim"),
		"/etc/containerd/rtshim.toml":          contribRtshim,
		"/etc/containerd/conf.d/rtshim.toml":   contribContainerd,
	} {
		got, err := os.ReadFile(root + file)
		want, werr := os.ReadFile(src)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: not installed from %s (%v, %v)", file, src, err, werr)
		}
	}
	if _, err := os.Stat(root + "/usr/local/bin/rtshim-node-install"); err == nil {
		t.Error("the installer installed itself")
	}
	if cfg, _ := os.ReadFile(root + nodeContainerdConfig); !strings.Contains(string(cfg), `imports = ["/etc/containerd/conf.d/*.toml"]`) {
		t.Errorf("%s imports no drop-in:\n%s", nodeContainerdConfig, cfg)
	}

	// As the installer says: restart containerd. The runtime rt is now the installed one.
	if err := n.restartContainerd(); err != nil {
		t.Fatal(err)
	}
	// containerd's CRI plugin logs its config as it starts: the installed drop-in won.
	logged, _ := os.ReadFile(n.containerd.log)
	i := bytes.LastIndex(logged, []byte("starting cri plugin"))
	for _, want := range []string{`\"ConfigPath\":\"/etc/containerd/rtshim.toml\"`, `\"runtimePath\":\"/usr/local/bin/containerd-shim-rt-v2\"`} {
		if i < 0 || !bytes.Contains(logged[i:], []byte(want)) {
			t.Errorf("the restarted containerd's CRI config has no %s", want)
		}
	}
	budget := contribBudget(t)
	ann := map[string]string{"rtshim.io/policy": "SCHED_RR", "rtshim.io/priority": "15"}
	// rt (runtime type io.containerd.rt.v2) reads the installed config (options.ConfigPath; the
	// same state_dir as the tier's) and finds the shim binary on containerd's PATH, which here
	// starts with the tier's build; rt-runc names the installed binary (runtime_path).
	c.apply(t, toJSON(t, rtPod("rt-installed", "rt", ann, "", "", "app")))
	c.apply(t, toJSON(t, rtPod("rt-installed-runc", "rt-runc", ann, "", "", "app")))
	p := c.waitRunning(t, "rt-installed")
	pr := c.waitRunning(t, "rt-installed-runc")
	checkRT(t, p, "app", 2, 15, budget, -1)
	checkRT(t, pr, "app", 2, 15, budget, -1)
	if claims := n.claimsLeft(); len(claims) != 2 {
		t.Errorf("rtshim claims: %v, want the two pods'", claims)
	}
	if shims := n.shimsRunning(root + "/usr/local/bin/containerd-shim-rt-v2"); len(shims) != 1 {
		t.Errorf("processes of the installed shim: %v, want rt-installed-runc's one", shims)
	}

	// The device plugin, applied with the installer, reads the installed config (until the
	// installer wrote it, it exits and the kubelet starts it again): a pod holding 50 units of
	// rtshim.io/rt-bandwidth from it gets exactly that budget through the installed runtime.
	agent := c.devicePluginPod(t, "")
	c.waitRegistered(t, agent, 0)
	c.apply(t, toJSON(t, bwPod("rt-installed-bw", 50, ann, "app")))
	pb := c.waitRunning(t, "rt-installed-bw")
	checkRT(t, pb, "app", 2, 15, 50000, -1)
	c.deletePods(t, "rt-installed", "rt-installed-runc", "rt-installed-bw")
	waitCgroupsGone(t, p, pr, pb)
	if claims := n.claimsLeft(); len(claims) > 0 {
		t.Errorf("rtshim claims left: %v", claims)
	}

	// Uninstall: delete the DaemonSet, restart containerd.
	c.mustKubectl(t, "delete", "-f", installDir, "--wait=true", "--timeout=60s")
	if err := waitFor("the installer pod to go", 60*time.Second, nil, func() error {
		out, err := c.kubectl("-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=rtshim-node-installer", "-o", "name")
		if err == nil && strings.TrimSpace(out) != "" {
			err = fmt.Errorf("still there: %s", out)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	deleted = true
	if err := n.restartContainerd(); err != nil {
		t.Fatal(err)
	}
	nodeAfter := n.nodeFiles(t)
	if !maps.Equal(nodeBefore, nodeAfter) {
		var diff []string
		for k := range maps.Keys(nodeBefore) {
			if nodeAfter[k] != nodeBefore[k] {
				diff = append(diff, fmt.Sprintf("%s: %q -> %q", k, nodeBefore[k], nodeAfter[k]))
			}
		}
		for k := range maps.Keys(nodeAfter) {
			if _, ok := nodeBefore[k]; !ok {
				diff = append(diff, fmt.Sprintf("%s: added", k))
			}
		}
		slices.Sort(diff)
		t.Errorf("the node is not as it was after the uninstall:\n%s", strings.Join(diff, "\n"))
	}
	// And the runtime rt is the tier's own again, with the node's rtshim config back.
	n.setShimConfig(t, false)
	c.apply(t, toJSON(t, rtPod("rt-uninstalled", "rt-runc", ann, "", "", "app")))
	p = c.waitRunning(t, "rt-uninstalled")
	checkRT(t, p, "app", 2, 15, budget, -1)
	if shims := n.shimsRunning(filepath.Join(binDir, "containerd-shim-rt-v2")); len(shims) != 1 {
		t.Errorf("processes of the tier's shim: %v, want rt-uninstalled's one", shims)
	}
	c.deletePods(t, "rt-uninstalled")
	waitCgroupsGone(t, p)
	assertTreeRestored(t, before)
	c.node.assertNoNewRecords(t, records)
}

// root is the node's root directory as its mount namespace sees it, reached from the host.
func (n *node) root() string { return fmt.Sprintf("/proc/%d/root", n.holder.cmd.Process.Pid) }

// nodeFiles lists, as the node sees them, the files of the directories the installer writes
// to, with their mode and content (large files: size and modification time).
func (n *node) nodeFiles(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{"/usr/local/bin", "/etc/containerd"} {
		base := n.root() + dir
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(n.root(), path)
			switch {
			case d.IsDir(): // its entries are listed; its times change with them
				out["/"+rel] = info.Mode().String()
			case info.Size() < 1<<20: // the config files: their content
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				out["/"+rel] = fmt.Sprintf("%v %x", info.Mode(), sha256.Sum256(b))
			default: // the host's own large binaries
				out["/"+rel] = fmt.Sprintf("%v %d %d", info.Mode(), info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// shimsRunning lists the processes of the node's containerd running the binary at path.
func (n *node) shimsRunning(path string) []int {
	want, err := os.Stat(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, pid := range processesUsing(n.address) {
		if st, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && os.SameFile(st, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}
