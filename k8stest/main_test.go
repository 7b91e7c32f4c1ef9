//go:build linux

// The tests need root and these directories, which `make test-k8s` builds and passes in the
// environment:
//
//	RTSHIM_BIN_DIR    containerd-shim-rt-v2
//	RTSHIM_TOOLS_DIR  containerd, ctr, containerd-shim-runc-v2, runc
//	RTSHIM_K8S_DIR    etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl
//	RTSHIM_CNI_DIR    the CNI plugins loopback, tap and host-local
//	RTSHIM_ROOTFS     the test rootfs: busybox, /bin/pause, /bin/schedinfo
//
// Not root: every test skips. Root without the variables: the run fails.
//
// TestK8s starts one cluster (cluster_test.go, node_test.go) and runs every scenario as a
// subtest against it, so `go test -run 'TestK8s/resize'` selects one; the cluster's teardown
// (teardown_test.go) fails the test if anything is left on the host.
package k8stest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var (
	// skipReason, when set, makes requireRoot skip.
	skipReason string
	// Absolute directories from the environment (see the package doc).
	binDir, toolsDir, k8sDir, cniDir, rootfsDir string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		skipReason = "the Kubernetes tier needs root (containerd, kubelet, cgroups)"
		fmt.Println("SKIP: " + skipReason)
		os.Exit(m.Run())
	}
	if err := loadEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\nrun the Kubernetes tier with `make test-k8s` (as root): it builds the binaries and sets the environment\n", err)
		os.Exit(1)
	}
	sweepStale()
	os.Exit(m.Run())
}

func loadEnv() error {
	for _, v := range []struct {
		env   string
		dst   *string
		files []string
	}{
		{"RTSHIM_BIN_DIR", &binDir, []string{"containerd-shim-rt-v2"}},
		{"RTSHIM_TOOLS_DIR", &toolsDir, []string{"containerd", "ctr", "containerd-shim-runc-v2", "runc"}},
		{"RTSHIM_K8S_DIR", &k8sDir, []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"}},
		{"RTSHIM_CNI_DIR", &cniDir, []string{"loopback", "tap", "host-local"}},
		{"RTSHIM_ROOTFS", &rootfsDir, []string{"bin/sh", "bin/pause", "bin/schedinfo"}},
	} {
		dir := os.Getenv(v.env)
		if dir == "" {
			return fmt.Errorf("%s is not set", v.env)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", v.env, dir, err)
		}
		for _, f := range v.files {
			if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
				return fmt.Errorf("%s=%s: %w", v.env, dir, err)
			}
		}
		*v.dst = abs
	}
	return nil
}

// requireRoot skips the test when the tier cannot run here (not root).
func requireRoot(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
