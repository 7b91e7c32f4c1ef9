//go:build linux

package k8stest

import (
	"testing"
)

// TestK8s starts the cluster and runs every scenario against it.
func TestK8s(t *testing.T) {
	c := startCluster(t, nodeOpts{})
	t.Run("smoke", func(t *testing.T) {
		t.Log(c.mustKubectl(t, "get", "nodes", "-o", "wide"))
	})
}
