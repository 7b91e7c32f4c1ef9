//go:build linux

package k8stest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// tempPrefix names the cluster's temp dir under /tmp: short, for the 108-byte limit of
	// unix socket paths. sweepStale looks for it.
	tempPrefix = "rtk8s-"
	// ownerFile in the temp dir holds the PID of the test binary that made it.
	ownerFile = "owner"
	// nodeName is the kubelet's --hostname-override: its node's name, and (being an IP) its
	// InternalIP, which the API server dials for exec and logs. A loopback --node-ip is refused.
	nodeName = "127.0.0.1"
	// serviceIP is the first address of the service range: the kubernetes Service's.
	serviceIP   = "10.0.0.1"
	serviceCIDR = "10.0.0.0/24"
)

// cluster is a single-node Kubernetes cluster and its node's containerd, all in dir.
type cluster struct {
	dir string
	pki *pki

	etcd, apiserver, controllerManager, scheduler *proc
	node                                          *node

	etcdURL    string       // etcd's client URL
	server     string       // the API server's URL
	kubeconfig string       // cluster admin's
	api        *http.Client // the cluster admin's client of the API server, once made
	// phases are the start-up's steps with their durations, in order.
	phases []phase
}

type phase struct {
	name string
	took time.Duration
}

// timed runs f as a named phase of the cluster's life and records how long it took.
func (c *cluster) timed(t testing.TB, name string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	c.phases = append(c.phases, phase{name, time.Since(start)})
	t.Logf("phase %s: %v", name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// startCluster starts etcd, the control plane, containerd and the kubelet, and waits until the
// node is Ready. t.Cleanup tears it all down and fails t if anything is left on the host.
func startCluster(t testing.TB, opts nodeOpts) *cluster {
	t.Helper()
	requireRoot(t)
	before := snapshotCPUTree(t)
	dir, err := os.MkdirTemp("/tmp", tempPrefix)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir}
	t.Cleanup(func() { c.teardown(t, before) })
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.timed(t, "certificates", func() (err error) {
		c.pki, err = newPKI(filepath.Join(dir, "pki"))
		return err
	})
	c.timed(t, "etcd", c.startEtcd)
	c.timed(t, "kube-apiserver", c.startAPIServer)
	c.timed(t, "controller-manager and scheduler", c.startControllers)
	c.node = &node{c: c, opts: opts}
	c.timed(t, "containerd", c.node.startContainerd)
	c.timed(t, "images", c.node.importImages)
	c.timed(t, "kubelet", c.node.startKubelet)
	c.timed(t, "node Ready", c.node.waitReady)
	// Every scenario needs the RuntimeClasses; the contrib scenario applies them again, with the
	// rest of contrib/kubernetes, as a user does.
	c.timed(t, "RuntimeClasses", func() error {
		_, err := c.kubectl("apply", "-f", contribKubernetes+"00-runtimeclass.yaml")
		return err
	})
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))
	return c
}

func (c *cluster) newProc(name string, args ...string) *proc {
	return &proc{name: name, args: args, env: os.Environ(), log: filepath.Join(c.dir, name+".log")}
}

func (c *cluster) startEtcd() error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	c.etcdURL = clientURL
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	c.etcd = c.newProc("etcd", filepath.Join(k8sDir, "etcd"),
		"--name", "default", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		// A test cluster's data need not survive a power cut: no fsync, much faster.
		"--unsafe-no-fsync", "--log-level", "warn")
	if err := c.etcd.start(); err != nil {
		return err
	}
	return waitFor("etcd health", 30*time.Second, c.etcd, func() error {
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"health":"true"`) {
			return fmt.Errorf("etcd /health: %s", b)
		}
		return nil
	})
}

func (c *cluster) startAPIServer() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", port)
	p := c.pki
	c.apiserver = c.newProc("kube-apiserver", filepath.Join(k8sDir, "kube-apiserver"),
		"--etcd-servers", c.etcdURL,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		"--advertise-address", "127.0.0.1",
		// The kubernetes Service's endpoints would be the loopback address: keep them out.
		"--endpoint-reconciler-type", "none",
		"--cert-dir", filepath.Join(c.dir, "apiserver"),
		"--tls-cert-file", p.Cert("apiserver"), "--tls-private-key-file", p.Key("apiserver"),
		"--client-ca-file", p.CACert,
		"--service-account-key-file", p.path("sa.pub"), "--service-account-signing-key-file", p.path("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", p.Cert("apiserver-kubelet-client"),
		"--kubelet-client-key", p.Key("apiserver-kubelet-client"),
		// The node's InternalIP is 127.0.0.1 (its name); there is no DNS for its hostname.
		"--kubelet-preferred-address-types", "InternalIP",
		"--allow-privileged=true", "--profiling=false")
	if err := c.apiserver.start(); err != nil {
		return err
	}
	if c.kubeconfig, err = p.kubeconfig("admin", c.server); err != nil {
		return err
	}
	client, err := c.httpClient()
	if err != nil {
		return err
	}
	return waitFor("kube-apiserver /readyz", 90*time.Second, c.apiserver, func() error {
		resp, err := client.Get(c.server + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("/readyz: %s: %s", resp.Status, b)
		}
		return nil
	})
}

// httpClient talks to the API server as the cluster admin.
func (c *cluster) httpClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(c.pki.Cert("admin"), c.pki.Key("admin"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.pki.ca)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

func (c *cluster) startControllers() error {
	cmKubeconfig, err := c.pki.kubeconfig("controller-manager", c.server)
	if err != nil {
		return err
	}
	schedKubeconfig, err := c.pki.kubeconfig("scheduler", c.server)
	if err != nil {
		return err
	}
	c.controllerManager = c.newProc("kube-controller-manager", filepath.Join(k8sDir, "kube-controller-manager"),
		"--kubeconfig", cmKubeconfig, "--leader-elect=false", "--secure-port", "0",
		"--service-account-private-key-file", c.pki.path("sa.key"), "--root-ca-file", c.pki.CACert,
		// It would create its default, /usr/libexec/kubernetes/...
		"--flex-volume-plugin-dir", filepath.Join(c.dir, "cm-volume-plugins"))
	c.scheduler = c.newProc("kube-scheduler", filepath.Join(k8sDir, "kube-scheduler"),
		"--kubeconfig", schedKubeconfig, "--leader-elect=false", "--secure-port", "0")
	for _, p := range []*proc{c.controllerManager, c.scheduler} {
		if err := p.start(); err != nil {
			return err
		}
	}
	// Pods can only be created once the namespace's default ServiceAccount exists (the
	// ServiceAccount admission plugin), which the controller manager makes.
	return waitFor("the default ServiceAccount", 60*time.Second, c.controllerManager, func() error {
		_, err := c.kubectl("get", "serviceaccount", "default", "-o", "name")
		return err
	})
}
