// Package doctor checks whether a host is ready to run real-time containers through rtshim,
// and says for each finding what it saw, why it matters and the exact fix. It only reads: it
// never changes a host setting, so it is safe to run anywhere, any time.
//
// Every file it reads is below one of the roots in Host, so tests run it against fake procfs,
// sysfs and /etc trees.
package doctor

import (
	"os"
	"path/filepath"
)

// Severity grades a finding. Only Fail makes the host "not ready": a Warn costs latency but
// RT containers still run.
type Severity string

const (
	OK   Severity = "ok"
	Info Severity = "info"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Finding is one check's result. IDs are stable: scripts match on them.
type Finding struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Saw      string   `json:"saw"`
	Why      string   `json:"why"`
	Fix      string   `json:"fix,omitempty"`
}

// Report is the whole result, in the order the checks ran.
type Report struct {
	Ready    bool             `json:"ready"`
	Counts   map[Severity]int `json:"counts"`
	Findings []Finding        `json:"findings"`
}

// Host says where the host's files are. Paths found inside files (mount points in mountinfo,
// ConfigPath and runtime_path in containerd's config, /proc/<pid>/exe) are used as they are:
// on a real host they are real paths, and a fake tree writes its own absolute paths there.
type Host struct {
	ProcRoot string // /proc
	SysRoot  string // /sys
	EtcRoot  string // /etc: containerd/config.toml, containerd/rtshim.toml
	RunRoot  string // /run: systemd/system
	BootDir  string // /boot: config-<release> when /proc/config.gz is missing
	// ContainerdConfigs are config files to check besides EtcRoot/containerd/config.toml
	// (e.g. a private containerd's --config). Unlike the default file, they must exist.
	ContainerdConfigs []string
	// ShimConfig is the rtshim config to check instead of the ones containerd's config names.
	ShimConfig string
	// PATH is searched for containerd and containerd-shim-rt-v2, as containerd would.
	PATH string
	// Address is the gRPC socket of the containerd to check (rtshim doctor --address): doctor
	// asks it its version, and reads the config file and environment of the process serving
	// it. Empty: every running containerd.
	Address string
}

// DefaultHost is the host this process runs on.
func DefaultHost() Host {
	return Host{ProcRoot: "/proc", SysRoot: "/sys", EtcRoot: "/etc", RunRoot: "/run", BootDir: "/boot",
		PATH: os.Getenv("PATH")}
}

// check is one finding's logic; it reads what it needs from the shared env.
type check func(*env) Finding

// checks run in this order: the order an operator fixes things in (cgroups and kernel before
// tuning, tuning before containerd wiring).
var checks = []check{
	(*env).cgroupVersion,
	(*env).cgroupDriver,
	(*env).rtGroupSched,
	(*env).rtThrottling,
	(*env).preemptRT,
	(*env).cpuIsolation,
	(*env).irqBalance,
	(*env).cpuGovernor,
	(*env).cStates,
	(*env).cpuTuning,
	(*env).containerdVersion,
	(*env).containerdRuntime,
	(*env).shimBinary,
	(*env).shimConfig,
	(*env).orphans,
}

// Run checks the host. It never fails as a whole: what cannot be read becomes a finding.
func Run(h Host) Report {
	e := load(h)
	r := Report{Ready: true, Counts: map[Severity]int{OK: 0, Info: 0, Warn: 0, Fail: 0}}
	for _, c := range checks {
		f := c(e)
		r.Findings = append(r.Findings, f)
		r.Counts[f.Severity]++
		if f.Severity == Fail {
			r.Ready = false
		}
	}
	return r
}

// env is what several checks share, read once: mounts, processes, the containerd daemons,
// containerd's config and the rtshim configs it names.
type env struct {
	h          Host
	mounts     mounts
	procs      map[string][]int // comm → pids
	daemons    []*daemon        // every running containerd
	targets    []*daemon        // the ones checked: the one at Host.Address, else all of daemons
	containerd []*containerdFile
	runtimes   []runtimeEntry
	shim       []shimSource // the rtshim configs in use; [0] is the one other checks use
}

func load(h Host) *env {
	e := &env{h: h}
	e.mounts = readMounts(h.ProcRoot)
	e.procs = scanProcs(h.ProcRoot)
	e.daemons = e.findDaemons()
	e.targets = e.pickTargets()
	e.loadContainerd()
	for _, d := range e.targets {
		askVersion(d)
	}
	e.shim = e.shimSources()
	return e
}

// scanProcs maps each command name to its pids, from /proc/<pid>/comm.
func scanProcs(procRoot string) map[string][]int {
	out := map[string][]int{}
	ents, _ := os.ReadDir(procRoot)
	for _, ent := range ents {
		pid, ok := atoiPositive(ent.Name())
		if !ok {
			continue
		}
		comm, err := readTrim(filepath.Join(procRoot, ent.Name(), "comm"))
		if err == nil {
			out[comm] = append(out[comm], pid)
		}
	}
	return out
}
