//go:build linux

package harness

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// What a dockerd may touch on the host although StartDockerd moves its data root, exec root,
// pid file and socket into the test's dir: SnapshotDockerHost records it before the daemon
// starts, and the daemon's cleanup fails the test on any difference once it stopped.
var (
	// dockerHostPaths are where a dockerd (20.10, 28 and 29) writes by default, the CDI spec
	// dirs it watches, containerd's default root and state, and the named netns dir. dockerd
	// makes /run/docker/plugins (plugin discovery) regardless of its exec root, so the cleanup
	// removes /run/docker when the test made it.
	dockerHostPaths = []string{
		"/etc/docker/key.json", "/var/lib/docker", "/run/docker", "/run/docker.sock", "/run/docker.pid",
		"/var/lib/containerd", "/run/containerd/containerd.sock", "/etc/cdi", "/run/cdi", "/run/netns",
		"/root/.docker",
	}
	// dockerHostDirs are directories whose listing must not change (/etc/docker is the
	// docker.io package's, empty).
	dockerHostDirs = []string{"/etc/docker"}
	// dockerSysctls are the network settings dockerd changes unless told not to (ip_forward,
	// IPv6 forwarding, bridge netfilter, route_localnet for the userland proxy).
	dockerSysctls = []string{
		"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding",
		"net/ipv6/conf/all/disable_ipv6", "net/ipv4/conf/all/route_localnet",
		"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	}
	// firewallDumps print the host's packet filter rules, where the tools are installed.
	firewallDumps = [][]string{{"iptables-save"}, {"ip6tables-save"}, {"nft", "list", "ruleset"}}
)

// DockerHost is what SnapshotDockerHost saw: every entry is "what: value", comparable as
// strings.
type DockerHost map[string]string

// SnapshotDockerHost records dockerHostPaths (whether each exists), the listings of dockerHostDirs,
// dockerSysctls, the network interfaces, the firewall rules, and the mount points outside own
// (the test's daemon dir, whose mounts its cleanup handles) and other live test runs' dirs.
func SnapshotDockerHost(own string) DockerHost {
	s := DockerHost{}
	for _, p := range dockerHostPaths {
		s["path "+p] = fmt.Sprint(Exists(p))
	}
	for _, dir := range dockerHostDirs {
		ents, _ := os.ReadDir(dir)
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		s["dir "+dir] = strings.Join(names, " ")
	}
	for _, name := range dockerSysctls {
		s["sysctl "+name] = readSysctl(name)
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		s["link "+l.Name()] = "present"
	}
	for _, argv := range firewallDumps {
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		// Comments carry the time of the dump.
		var rules []string
		for line := range strings.Lines(string(out)) {
			if !strings.HasPrefix(line, "#") {
				rules = append(rules, strings.TrimSpace(line))
			}
		}
		s["firewall "+strings.Join(argv, " ")] = fmt.Sprintf("%v %q", err == nil, strings.Join(rules, "\n"))
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			point := fields[4]
			if under(point, own) || foreignMount(point) {
				continue
			}
			s["mount "+point] = "mounted"
		}
		f.Close()
	}
	return s
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// foreignMount reports whether mount point p is inside another live test run's temp dir.
func foreignMount(p string) bool {
	rel, ok := strings.CutPrefix(p, TempRoot+"/")
	if !ok {
		return false
	}
	first, _, _ := strings.Cut(rel, "/")
	return ForeignRun(first)
}

// Diff lists what changed from s to now, one "what: before -> after" each, sorted.
func (s DockerHost) Diff(now DockerHost) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		if v, ok := now[k]; !ok {
			out = append(out, fmt.Sprintf("%s: %s -> <gone>", k, s[k]))
		} else if v != s[k] {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, s[k], v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if _, ok := s[k]; !ok {
			out = append(out, fmt.Sprintf("%s: <none> -> %s", k, now[k]))
		}
	}
	return out
}

func readSysctl(name string) string {
	b, err := os.ReadFile(filepath.Join("/proc/sys", name))
	if err != nil {
		return "<none>"
	}
	return strings.TrimSpace(string(b))
}
