package cgroupfix

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
)

// Hierarchy is where the cpu controller lives on this host.
type Hierarchy struct {
	Mount string // mount point of the cgroup v1 cpu hierarchy, or of the unified hierarchy
	V2    bool
}

// Mount is the root of one cgroup hierarchy, as mountinfo lists it.
type Mount struct {
	Point   string   // mount point
	V2      bool     // cgroup2 (else a v1 hierarchy)
	Options []string // super options: v1 controllers ("cpu", "cpuacct"), "name=systemd", ...
}

// Mounts lists the cgroup hierarchies mounted at their root (procRoot/self/mountinfo), in
// mountinfo's order. Bind mounts of a sub-cgroup are left out.
func Mounts(procRoot string) ([]Mount, error) { return readMounts(procRoot, false) }

// readMounts reads procRoot/self/mountinfo; stopAtCPU: up to the cgroup v1 cpu hierarchy,
// which cpuHierarchy takes whatever follows. The host's cgroups are mounted at boot, ahead of
// the mounts that come with each running container, so a create's lookup does not read a
// table that grows with the containers running.
func readMounts(procRoot string, stopAtCPU bool) ([]Mount, error) {
	f, err := os.Open(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(f, stopAtCPU)
}

func parseMountinfo(r io.Reader, stopAtCPU bool) ([]Mount, error) {
	infos, err := mountinfo.GetMountsFromReader(r, func(i *mountinfo.Info) (skip, stop bool) {
		if i.Root != "/" || (i.FSType != "cgroup" && i.FSType != "cgroup2") {
			return true, false
		}
		return false, stopAtCPU && i.FSType == "cgroup" && slices.Contains(strings.Split(i.VFSOptions, ","), "cpu")
	})
	if err != nil {
		return nil, err
	}
	out := make([]Mount, 0, len(infos))
	for _, i := range infos {
		out = append(out, Mount{Point: i.Mountpoint, V2: i.FSType == "cgroup2", Options: strings.Split(i.VFSOptions, ",")})
	}
	return out, nil
}

// FindCPU returns the cpu controller's hierarchy: cgroup v1's "cpu" mount (possibly co-mounted
// as cpu,cpuacct) when there is one, else the cgroup2 mount. A hybrid host (v1 controllers
// plus an empty cgroup2) counts as v1.
func FindCPU(procRoot string) (Hierarchy, error) {
	mounts, err := readMounts(procRoot, true)
	if err != nil {
		return Hierarchy{}, err
	}
	return cpuHierarchy(mounts)
}

func cpuHierarchy(mounts []Mount) (Hierarchy, error) {
	var v2 string
	for _, m := range mounts {
		switch {
		case !m.V2 && slices.Contains(m.Options, "cpu"):
			return Hierarchy{Mount: m.Point}, nil
		case m.V2 && v2 == "":
			v2 = m.Point
		}
	}
	if v2 != "" {
		return Hierarchy{Mount: v2, V2: true}, nil
	}
	return Hierarchy{}, fmt.Errorf("%w: no cgroup cpu controller mounted (neither a v1 cpu hierarchy nor cgroup2)", errdefs.ErrFailedPrecondition)
}

// V2RefusesRT reports whether this kernel refuses real-time tasks in every non-root cgroup v2
// (CONFIG_RT_GROUP_SCHED=y and not turned off at boot), with the fix. The kernel config comes
// from procRoot/config.gz or bootDir/config-<release>; when neither exists it returns false
// and the policy write itself reports EPERM.
func V2RefusesRT(procRoot, bootDir string) (bool, string) {
	cfg := kernelConfig(procRoot, bootDir)
	if !bytes.Contains(cfg, []byte("\nCONFIG_RT_GROUP_SCHED=y")) {
		return false, ""
	}
	cmdline, _ := os.ReadFile(filepath.Join(procRoot, "cmdline"))
	on := !bytes.Contains(cfg, []byte("\nCONFIG_RT_GROUP_SCHED_DEFAULT_DISABLED=y"))
	for _, arg := range strings.Fields(string(cmdline)) {
		switch arg {
		case "rt_group_sched=0":
			on = false
		case "rt_group_sched=1":
			on = true
		}
	}
	if !on {
		return false, ""
	}
	return true, "this kernel has CONFIG_RT_GROUP_SCHED=y, which refuses real-time tasks in every non-root cgroup v2; " +
		"boot it with rt_group_sched=0 (Linux 6.16 or newer) or use a kernel built without RT_GROUP_SCHED " +
		"(e.g. Debian's linux-image-rt-amd64)"
}

func kernelConfig(procRoot, bootDir string) []byte {
	if f, err := os.Open(filepath.Join(procRoot, "config.gz")); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			if b, err := io.ReadAll(z); err == nil {
				return append([]byte("\n"), b...)
			}
		}
	}
	release, err := os.ReadFile(filepath.Join(procRoot, "sys", "kernel", "osrelease"))
	if err != nil {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(bootDir, "config-"+strings.TrimSpace(string(release))))
	return append([]byte("\n"), b...)
}

// TickUS is one scheduler tick of this kernel in microseconds (1/CONFIG_HZ, from the kernel
// config as V2RefusesRT reads it), and CONFIG_HZ; 0, 0 when the config cannot be read.
func TickUS(procRoot, bootDir string) (tick int64, hz int) {
	cfg := kernelConfig(procRoot, bootDir)
	i := bytes.Index(cfg, []byte("\nCONFIG_HZ="))
	if i < 0 {
		return 0, 0
	}
	line := cfg[i+len("\nCONFIG_HZ="):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	hz, err := strconv.Atoi(string(line))
	if err != nil || hz <= 0 {
		return 0, 0
	}
	return 1000000 / int64(hz), hz
}
