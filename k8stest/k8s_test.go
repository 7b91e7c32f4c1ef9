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
}
