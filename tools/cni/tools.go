//go:build tools

// Package tools pins the CNI plugins the Kubernetes tier (make test-k8s) gives its
// containerd: loopback, and tap with host-local IPAM, which give each pod its own network
// namespace with an address on a tap interface and touch nothing in the host's network
// namespace (the test hosts' kernel has no dummy, macvlan or ipvlan links; a tap needs only
// /dev/net/tun). Nothing imports it; the Makefile builds the commands below from this module.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/main/tap"
)
