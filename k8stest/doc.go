// Package k8stest is the real single-node Kubernetes tier (make test-k8s): etcd,
// kube-apiserver, kube-scheduler, kube-controller-manager and a kubelet built from
// tools/k8s and tools/etcd, over a private containerd with its CRI plugin and rtshim, on the
// host's real cgroups. Its tests are in the _test.go files; see main_test.go.
package k8stest
