package doctor

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rtshim/rtshim/cgroupfix"
)

// mounts is what mountinfo says about cgroups.
type mounts struct {
	err    error
	v1     []string // v1 controllers with a hierarchy of their own or co-mounted
	v2     string   // the cgroup2 mount point, "" if none
	cpu    cgroupfix.Hierarchy
	cpuErr error
}

// v1Controllers tells controllers from the other super options of a v1 mount (rw, xattr,
// name=..., clone_children, ...).
var v1Controllers = map[string]bool{
	"blkio": true, "cpu": true, "cpuacct": true, "cpuset": true, "devices": true, "freezer": true, "hugetlb": true,
	"memory": true, "misc": true, "net_cls": true, "net_prio": true, "perf_event": true, "pids": true, "rdma": true,
}

func readMounts(procRoot string) mounts {
	var m mounts
	all, err := cgroupfix.Mounts(procRoot)
	if err != nil {
		m.err = err
		return m
	}
	for _, mt := range all {
		switch {
		case mt.V2 && m.v2 == "":
			m.v2 = mt.Point
		case !mt.V2:
			for _, opt := range mt.Options {
				// Named hierarchies (name=systemd) hold no controller: they do not make a host v1.
				if v1Controllers[opt] {
					m.v1 = append(m.v1, opt)
				}
			}
		}
	}
	sort.Strings(m.v1)
	// The cpu hierarchy exactly as the shim finds it, so doctor and shim cannot disagree.
	m.cpu, m.cpuErr = cgroupfix.FindCPU(procRoot)
	return m
}

func (e *env) cgroupVersion() Finding {
	f := Finding{ID: "cgroup.version", Title: "cgroup version"}
	m := e.mounts
	switch {
	case m.err != nil:
		f.Severity, f.Saw = Fail, fmt.Sprintf("cannot read mountinfo: %v", m.err)
		f.Why = "rtshim finds the cpu controller's hierarchy in mountinfo; without it no container can be given RT resources."
		f.Fix = "Run rtshim doctor on the host (not in a container), as root, with /proc mounted."
	case m.cpuErr != nil:
		f.Severity, f.Saw = Fail, m.cpuErr.Error()
		f.Why = "RT budgets (cgroup v1) and the CFS quota exemption live in the cpu controller; containerd and runc need it too."
		f.Fix = "Mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup), or the v1 cpu controller " +
			"(mount -t cgroup -o cpu,cpuacct cgroup /sys/fs/cgroup/cpu,cpuacct)."
	case m.cpu.V2:
		f.Severity, f.Saw = OK, fmt.Sprintf("cgroup v2 (unified) at %s", m.cpu.Mount)
		f.Why = "cgroup v2 is containerd's supported cgroup version; it has no per-cgroup RT budgets, so RT needs a kernel " +
			"that allows RT tasks in child cgroups (see rt.group-sched)."
	default:
		kind := "a cgroup v1 host"
		f.Saw = fmt.Sprintf("cgroup v1: cpu controller at %s; v1 controllers %s", m.cpu.Mount, strings.Join(m.v1, ","))
		if m.v2 != "" {
			kind = "a hybrid host (controllers on v1)"
			f.Saw = fmt.Sprintf("cgroup hybrid: cpu controller on v1 at %s; v1 controllers %s; cgroup2 at %s",
				m.cpu.Mount, strings.Join(m.v1, ","), m.v2)
		}
		f.Severity = Info
		f.Why = "On " + kind + " rtshim grants each RT container an RT budget up the cgroup tree (see rt.group-sched). " +
			"containerd deprecates cgroup v1 and supports it until May 2029."
		f.Fix = "Nothing needed now. To move to cgroup v2 later: boot with systemd.unified_cgroup_hierarchy=1 (systemd hosts) " +
			"or cgroup_no_v1=all with cgroup2 mounted on /sys/fs/cgroup, then run rtshim doctor again."
	}
	return f
}

// cgroupDriver compares the cgroup driver each RT runtime gives runc with whether systemd
// runs: runc's systemd driver without systemd cannot create any container, and two managers
// of one tree (systemd plus cgroupfs writes) is what Kubernetes warns against.
func (e *env) cgroupDriver() Finding {
	f := Finding{ID: "cgroup.driver", Title: "cgroup driver"}
	systemd := isDir(filepath.Join(e.h.RunRoot, "systemd", "system"))
	sys := "systemd is not running (no " + filepath.Join(e.h.RunRoot, "systemd", "system") + ")"
	if systemd {
		sys = "systemd is running"
	}
	drivers := e.rtDrivers()
	var parts []string
	if len(drivers) == 0 {
		parts = append(parts, "rt runtimes: driver unknown, the rtshim config does not load (see shim.config)")
	}
	var rtSystemd, rtCgroupfs bool
	for _, d := range drivers {
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", d.runtime, driverName(d.systemd), d.from))
		rtSystemd = rtSystemd || d.systemd
		rtCgroupfs = rtCgroupfs || !d.systemd
	}
	var runcSystemd, runcCgroupfs bool
	for _, r := range e.runtimes {
		if !r.isRT() && r.Type == runtimeRunc {
			sd := optBool(r.Options, "SystemdCgroup")
			parts = append(parts, fmt.Sprintf("%s: %s (SystemdCgroup in %s)", r.Name, driverName(sd), r.File))
			runcSystemd, runcCgroupfs = runcSystemd || sd, runcCgroupfs || !sd
		}
	}
	f.Saw = sys + "; " + strings.Join(parts, "; ")
	switch {
	case rtSystemd && !systemd:
		f.Severity = Fail
		f.Why = "runc's systemd cgroup driver asks systemd over D-Bus to create each container's scope; without systemd " +
			"every container fails to start."
		f.Fix = "Set systemd_cgroup = false in the rtshim config's [runc] table (runtime_type io.containerd.rt.v2) or " +
			"SystemdCgroup = false in the runtime's options (io.containerd.runc.v2 + runtime_path), then restart containerd."
	case systemd && rtCgroupfs:
		f.Severity = Warn
		f.Why = "With systemd running, the cgroupfs driver makes two managers of one cgroup tree; systemd may undo or " +
			"fight cgroupfs writes, and kubelet's cgroupDriver must match the runtime's."
		f.Fix = "Set systemd_cgroup = true in the rtshim config's [runc] table (or SystemdCgroup = true in the runtime's " +
			"options), and cgroupDriver: systemd in kubelet's config, then restart containerd."
	case rtSystemd && runcCgroupfs || rtCgroupfs && runcSystemd:
		f.Severity = Warn
		f.Why = "kubelet has a single cgroupDriver: pods of runtimes with another driver get cgroups it does not manage."
		f.Fix = "Use the same driver for every runtime: systemd_cgroup in the rtshim config's [runc] table must equal the " +
			"runc runtime's SystemdCgroup."
	default:
		f.Severity = OK
		f.Why = "The cgroup driver must match the host: systemd where systemd runs, cgroupfs elsewhere."
	}
	return f
}

func driverName(systemd bool) string {
	if systemd {
		return "systemd driver"
	}
	return "cgroupfs driver"
}

type rtDriver struct {
	runtime string
	systemd bool
	from    string
}

// rtDrivers is the driver runc gets under each RT runtime: with runtime_type
// io.containerd.rt.v2 the shim hands runc its own config's [runc] table; with the runc
// runtime type and runtime_path, containerd's runc options pass through unchanged. With no RT
// runtime configured (ctr, Docker), the rtshim config in use decides.
func (e *env) rtDrivers() []rtDriver {
	var out []rtDriver
	for _, r := range e.runtimes {
		if !r.isRT() {
			continue
		}
		if r.Type == runtimeRunc {
			out = append(out, rtDriver{r.Name, optBool(r.Options, "SystemdCgroup"), "SystemdCgroup in " + r.File})
		} else if s := e.shimSourceOf(r); s != nil && s.Cfg != nil {
			out = append(out, rtDriver{r.Name, s.Cfg.Runc.SystemdCgroup, s.driverFrom()})
		}
	}
	if len(out) == 0 && len(e.shim) > 0 && e.shim[0].Cfg != nil {
		out = append(out, rtDriver{runtimeRT, e.shim[0].Cfg.Runc.SystemdCgroup, e.shim[0].driverFrom()})
	}
	return out
}

func (s *shimSource) driverFrom() string {
	if s.Builtin {
		return "runc.systemd_cgroup default: no " + s.Name
	}
	return "runc.systemd_cgroup in " + s.Name
}

func optBool(opts map[string]any, key string) bool {
	b, _ := opts[key].(bool)
	return b
}
