//go:build linux

package k8stest

import (
	"testing"
)

// TestK8s starts the cluster and runs every scenario against it, one after the other (they
// compare the host's cpu cgroup tree before and after, so none runs in parallel).
func TestK8s(t *testing.T) {
	c := startCluster(t, nodeOpts{})
	t.Run("contrib", func(t *testing.T) { testContrib(t, c) })
	t.Run("resize", func(t *testing.T) { testResize(t, c) })
	t.Run("cpumanager", func(t *testing.T) { testCPUManager(t, c) })
	t.Run("restart", func(t *testing.T) { testRestart(t, c) })
	t.Run("scale", func(t *testing.T) { testScale(t, c) })
	t.Run("bandwidth", func(t *testing.T) { testBandwidth(t, c) })
	t.Run("installer", func(t *testing.T) { testInstaller(t, c) })
}
