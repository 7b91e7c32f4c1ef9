// Package status lists the real-time containers rtshim runs on a host. The claims in the
// state dir say which containers hold RT resources; everything else is read live from the
// kernel (the cgroup's tasks, their policy, the budget and quota files), because a claim
// records what was granted, not what the container runs with now.
package status

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/oci"
)

// Host says where to read. Sched reads a process's scheduling policy; nil means the real
// sched_getattr (tests pass a fake: a fake procfs cannot answer a syscall).
type Host struct {
	ProcRoot string
	StateDir string
	// StateDirNamed says the operator named StateDir (rtshim status --state-dir): then a missing
	// one is an error, probably a typo. The config's state_dir may not exist yet: it is made
	// by the first RT container since boot, so until then there is nothing to list.
	StateDirNamed bool
	Sched         func(pid int) (Sched, error)
}

// Sched is a process's policy as sched_getattr reports it.
type Sched struct {
	Policy   string `json:"policy"`
	Priority int    `json:"priority"`
	Nice     int    `json:"nice"`
	// SCHED_DEADLINE parameters, in nanoseconds.
	RuntimeNS  uint64 `json:"runtime_ns,omitempty"`
	DeadlineNS uint64 `json:"deadline_ns,omitempty"`
	PeriodNS   uint64 `json:"period_ns,omitempty"`
}

// String is the policy in a few words: FIFO/RR with their priority, DEADLINE with its
// parameters in rtshim.io/deadline's form.
func (s Sched) String() string {
	switch s.Policy {
	case "SCHED_FIFO", "SCHED_RR":
		return s.Policy + "/" + strconv.Itoa(s.Priority)
	case "SCHED_DEADLINE":
		return fmt.Sprintf("%s/runtime=%v,deadline=%v,period=%v", s.Policy,
			time.Duration(s.RuntimeNS), time.Duration(s.DeadlineNS), time.Duration(s.PeriodNS))
	}
	return s.Policy
}

// Process is one task of a container's cgroup.
type Process struct {
	PID   int    `json:"pid"`
	Sched *Sched `json:"sched,omitempty"`
	Error string `json:"error,omitempty"`
}

// Budget is a cgroup v1 RT budget: rt_runtime_us per rt_period_us.
type Budget struct {
	RuntimeUS int64 `json:"rt_runtime_us"`
	PeriodUS  int64 `json:"rt_period_us"`
}

// Shim is the process that owns the claim.
type Shim struct {
	PID   int  `json:"pid"`
	Alive bool `json:"alive"`
}

// Container is one claim and what the kernel says about it now.
type Container struct {
	Namespace    string    `json:"namespace"`
	ID           string    `json:"id"`
	Cgroup       string    `json:"cgroup"`
	CgroupExists bool      `json:"cgroup_exists"`
	Pod          string    `json:"pod,omitempty"`
	Processes    []Process `json:"processes"`
	Budget       *Budget   `json:"rt_budget,omitempty"`
	Claimed      *Budget   `json:"claimed_rt_budget,omitempty"`
	ExemptQuota  bool      `json:"exempt_quota"`
	// Quota and PodQuota are "max" (no CFS quota) or "<quota>/<period>" in µs; "" if unknown.
	Quota    string `json:"cpu_quota"`
	PodQuota string `json:"pod_cpu_quota,omitempty"`
	Shim     Shim   `json:"shim"`
	// Orphan: the shim is gone but processes still run in the cgroup, holding the claim's
	// budget; nothing gives it back on its own (rtshim reap does).
	Orphan bool `json:"orphan,omitempty"`
}

// Report is everything rtshim status shows.
type Report struct {
	StateDir string `json:"state_dir"`
	// StateDirExists is false when the config's state_dir has not been made yet.
	StateDirExists bool        `json:"state_dir_exists"`
	CgroupMount    string      `json:"cgroup_mount,omitempty"`
	CgroupV2       bool        `json:"cgroup_v2"`
	CgroupError    string      `json:"cgroup_error,omitempty"`
	Containers     []Container `json:"containers"`
	// Pods is the node's RT bandwidth for Kubernetes pods (rtshim.io/rt-bandwidth), when the
	// kubelet's /kubepods exists on a cgroup v1 hierarchy with RT group scheduling: the figure
	// rtshim device-plugin advertises.
	Pods *PodBandwidth `json:"pod_rt_bandwidth,omitempty"`
	// CorruptClaims are claim records that cannot be read: rtshim keeps them (and whatever
	// they hold) until an operator removes them.
	CorruptClaims []string `json:"corrupt_claims,omitempty"`
	// Tuned is every container's host tuning (exclusive CPUs, IRQs, C-states, governor).
	Tuned       []Tuned `json:"tuning,omitempty"`
	TuningError string  `json:"tuning_error,omitempty"`
}

// List reads the claims and the live state of each container. Only an unreadable state dir is
// an error: a missing cgroup or process is what status is there to show.
func List(h Host) (Report, error) {
	r := Report{StateDir: h.StateDir, Containers: []Container{}}
	switch st, err := os.Stat(h.StateDir); {
	case errors.Is(err, fs.ErrNotExist) && !h.StateDirNamed:
		return r, nil
	case errors.Is(err, fs.ErrNotExist):
		return r, fmt.Errorf("state dir %s does not exist: name the state_dir of the rtshim config the shims use "+
			"(default /run/rtshim), or leave --state-dir out to take it from the config", h.StateDir)
	case err != nil:
		return r, fmt.Errorf("state dir %s: %w", h.StateDir, err)
	case !st.IsDir():
		return r, fmt.Errorf("state dir %s is not a directory: name the state_dir of the rtshim config the shims use "+
			"(default /run/rtshim)", h.StateDir)
	}
	r.StateDirExists = true
	claims, err := cgroupfix.State{Dir: h.StateDir}.Claims()
	var corrupt *cgroupfix.CorruptError
	switch {
	case errors.As(err, &corrupt):
		r.CorruptClaims = corrupt.Records
	case err != nil:
		return r, fmt.Errorf("read claims in %s: %w", h.StateDir, err)
	}
	var cpu cgroupfix.FS
	if hier, err := cgroupfix.FindCPU(h.ProcRoot); err != nil {
		r.CgroupError = err.Error()
	} else {
		r.CgroupMount, r.CgroupV2 = hier.Mount, hier.V2
		cpu = cgroupfix.DirFS{Root: hier.Mount}
		r.Pods = podBandwidth(cpu, h.StateDir)
	}
	sched := h.Sched
	if sched == nil {
		sched = schedGetAttr
	}
	for _, c := range claims {
		r.Containers = append(r.Containers, inspect(h.ProcRoot, cpu, r.CgroupV2, sched, c))
	}
	tuned(h, &r)
	sort.Slice(r.Containers, func(i, j int) bool {
		a, b := r.Containers[i], r.Containers[j]
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.ID < b.ID
	})
	return r, nil
}

func inspect(procRoot string, cpu cgroupfix.FS, v2 bool, sched func(int) (Sched, error), c *cgroupfix.Claim) Container {
	out := Container{
		Namespace: c.Namespace, ID: c.ID, Cgroup: c.Leaf, Pod: c.Pod, ExemptQuota: c.ExemptQuota,
		Processes: []Process{},
		Shim:      Shim{PID: c.Owner.PID, Alive: c.Owner.Alive(procRoot)},
	}
	if c.RuntimeUS > 0 {
		out.Claimed = &Budget{c.RuntimeUS, c.PeriodUS}
	}
	if cpu == nil || !cpu.Exists(c.Leaf) {
		return out
	}
	out.CgroupExists = true
	procs, _ := cpu.ReadFile(c.Leaf, "cgroup.procs")
	for _, f := range strings.Fields(procs) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		p := Process{PID: pid}
		if s, err := sched(pid); err != nil {
			p.Error = err.Error()
		} else {
			p.Sched = &s
		}
		out.Processes = append(out.Processes, p)
	}
	if !v2 {
		rt, err1 := cgroupfix.ReadInt(cpu, c.Leaf, "cpu.rt_runtime_us")
		period, err2 := cgroupfix.ReadInt(cpu, c.Leaf, "cpu.rt_period_us")
		if err1 == nil && err2 == nil {
			out.Budget = &Budget{rt, period}
		}
	}
	out.Orphan = !out.Shim.Alive && len(out.Processes) > 0
	out.Quota = quota(cpu, v2, c.Leaf)
	if c.Pod != "" {
		out.PodQuota = quota(cpu, v2, c.Pod)
	}
	return out
}

// quota reads a cgroup's CFS quota in one form for both versions: "max" or "quota/period".
func quota(cpu cgroupfix.FS, v2 bool, cg string) string {
	if v2 {
		s, err := cpu.ReadFile(cg, "cpu.max") // "max 100000" or "50000 100000"
		if err != nil {
			return ""
		}
		q, p, _ := strings.Cut(s, " ")
		if q == "max" {
			return "max"
		}
		return q + "/" + p
	}
	q, err1 := cpu.ReadFile(cg, "cpu.cfs_quota_us")
	p, err2 := cpu.ReadFile(cg, "cpu.cfs_period_us")
	switch {
	case err1 != nil:
		return ""
	case q == "-1":
		return "max"
	case err2 != nil:
		return q
	}
	return q + "/" + p
}

// PolicySummary is the processes' policies in a few words: "SCHED_FIFO/80" when they agree,
// else each distinct policy with its count.
func (c Container) PolicySummary() string {
	counts := map[string]int{}
	var order []string
	for _, p := range c.Processes {
		s := "?"
		if p.Sched != nil {
			s = p.Sched.String()
		}
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	switch len(order) {
	case 0:
		return "-"
	case 1:
		return order[0]
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s×%d", s, counts[s])
	}
	return strings.Join(parts, ",")
}

// PodBandwidth is the node's RT bandwidth for pods, in µs per second and in
// rtshim.io/rt-bandwidth units.
type PodBandwidth struct {
	Kubepods    string `json:"kubepods"`
	FreeUS      int64  `json:"free_us"`
	AllocatedUS int64  `json:"allocated_us"`
	Units       int64  `json:"allocatable_units"`
}

// podBandwidth works the figure out as the device plugin does (cgroupfix.PodBandwidth).
func podBandwidth(cpu cgroupfix.FS, stateDir string) *PodBandwidth {
	const kubepods = "/kubepods"
	if !cpu.Exists(kubepods) {
		return nil
	}
	m := &cgroupfix.Manager{CPU: cpu, State: cgroupfix.State{Dir: stateDir}}
	b, err := m.PodBandwidth(kubepods, oci.UnitPeriodUS)
	if err != nil {
		return nil
	}
	return &PodBandwidth{Kubepods: kubepods, FreeUS: b.Free, AllocatedUS: b.Allocated,
		Units: oci.BandwidthUnits(b.Free + b.Allocated)}
}
