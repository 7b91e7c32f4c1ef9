package cgroupfix

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/internal/statefile"
)

// State is the host-wide directory every rtshim shim and wrapper shares: the lock that
// serialises budget changes (each container has its own shim process) and the records that
// let a budget be given back after a crash. It holds no counters: budgets are always
// recomputed from the cgroup tree; records only say which cgroups rtshim touched and what
// they held before.
type State struct{ Dir string }

// Claim is what one container holds: written before the first cgroup write, removed after
// the last, so a crash at any point leaves a record that the next lifecycle can finish.
type Claim struct {
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	// Leaf is the container's cgroup, Pod its pod-level cgroup ("" outside Kubernetes).
	Leaf        string `json:"leaf"`
	Pod         string `json:"pod,omitempty"`
	RuntimeUS   int64  `json:"rt_runtime_us,omitempty"`
	PeriodUS    int64  `json:"rt_period_us,omitempty"`
	ExemptQuota bool   `json:"exempt_quota,omitempty"`
	// AllocatedUS is the part of RuntimeUS that a Kubernetes rtshim.io/rt-bandwidth allocation
	// gave (all of it, or 0): the device plugin counts it as allocated by the kubelet.
	AllocatedUS int64 `json:"allocated_us,omitempty"`
	// DLAllocation is the container's rtshim.io/dl-bandwidth allocation in units (cgroup v2
	// nodes): the device plugin counts its SCHED_DEADLINE tasks as allocated by the kubelet.
	DLAllocation int64 `json:"dl_allocation,omitempty"`
	// CreatedLeaf: rtshim made the leaf cgroup (before runc), so it removes it too.
	CreatedLeaf bool `json:"created_leaf,omitempty"`
	// Owner identifies the live process responsible for the claim (the shim).
	Owner Owner `json:"owner"`

	// PodLimitUS bounds, per PodLimitPeriodUS, what the pod cgroup (the leaf's parent) may
	// hold in all: limits.max_pod_rt_runtime_us, checked when the claim is granted.
	PodLimitUS       int64 `json:"-"`
	PodLimitPeriodUS int64 `json:"-"`
}

// Owner is a process, identified by PID and start time so a reused PID does not count.
type Owner struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Baseline is what a cgroup file held before rtshim first changed it.
type Baseline struct {
	Cgroup string `json:"cgroup"`
	File   string `json:"file"`
	Value  string `json:"value"`
}

// MarkDirty notes that something failed on this host (a release, a rollback) and may have
// left a claim behind: the next release sweeps (see Manager.Release).
func (s State) MarkDirty() {
	if err := os.MkdirAll(s.Dir, 0o700); err == nil {
		_ = os.WriteFile(filepath.Join(s.Dir, "dirty"), nil, 0o600)
	}
}

// Dirty reports whether MarkDirty was called since the last sweep that found nothing stale.
func (s State) Dirty() bool {
	_, err := os.Stat(filepath.Join(s.Dir, "dirty"))
	return err == nil
}

// ClearDirty forgets the mark: a sweep found nothing stale.
func (s State) ClearDirty() { _ = os.Remove(filepath.Join(s.Dir, "dirty")) }

// Swept records that a sweep ran now.
func (s State) Swept() {
	p := filepath.Join(s.Dir, "swept")
	now := time.Now()
	if err := os.Chtimes(p, now, now); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(p, nil, 0o600)
	}
}

// SinceSweep is how long ago a sweep ran on this host (forever if none did).
func (s State) SinceSweep() time.Duration {
	st, err := os.Stat(filepath.Join(s.Dir, "swept"))
	if err != nil {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(st.ModTime())
}

// Lock takes the host-wide lock; call the returned function to release it.
func (s State) Lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	restore := boost()
	return func() {
		restore()
		f.Close()
	}, nil
}

// boost raises the calling thread's CPU weight (nice -10) until the returned function runs.
// Every create and delete on the host waits for the lock's holder; when containers start by
// the dozen on a few CPUs, a holder at the default weight is preempted again and again and the
// queue behind it grows (a priority ceiling, as for any lock many wait on). Not permitted
// without CAP_SYS_NICE, in which case nothing changes.
func boost() (restore func()) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	// getpriority(2) returns 20-nice.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil || 20-prio <= lockNice || unix.Setpriority(unix.PRIO_PROCESS, tid, lockNice) != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 20-prio)
		runtime.UnlockOSThread()
	}
}

// lockNice is the lock holder's nice value.
const lockNice = -10

func (s State) claimPath(ns, id string) string {
	return filepath.Join(s.Dir, "claims", RecordName(ns, id)+".json")
}

// RecordName is the file name (without extension) of container ns/id's records: both parts
// escaped, dots included, so that the dot between them is the only one and no two containers
// share a name ("a" + "b.c" is a.b%2Ec, "a.b" + "c" is a%2Eb.c).
func RecordName(ns, id string) string { return escapeName(ns) + "." + escapeName(id) }

func escapeName(s string) string { return strings.ReplaceAll(url.PathEscape(s), ".", "%2E") }

// LegacyRecordName is the name rtshim 0.1 gave records, which did not escape dots; such
// records are still read (and moved on their next write) when their content names ns/id.
func LegacyRecordName(ns, id string) string { return url.PathEscape(ns) + "." + url.PathEscape(id) }

func (s State) legacyClaimPath(ns, id string) string {
	return filepath.Join(s.Dir, "claims", LegacyRecordName(ns, id)+".json")
}

// legacyClaim returns the claim at ns/id's legacy path if it is ns/id's (another container's
// claim can sit at that name: that was the ambiguity).
func (s State) legacyClaim(ns, id string) (*Claim, string) {
	p := s.legacyClaimPath(ns, id)
	if p == s.claimPath(ns, id) {
		return nil, ""
	}
	var c Claim
	if ok, err := statefile.ReadJSON(p, &c); !ok || err != nil || c.Namespace != ns || c.ID != id {
		return nil, ""
	}
	return &c, p
}

func (s State) baselinePath(cgroup, file string) string {
	return filepath.Join(s.Dir, "baselines", url.PathEscape(file+":"+cgroup)+".json")
}

// SaveClaim writes c's claim record (and retires a legacy one of the same container).
func (s State) SaveClaim(c *Claim) error {
	if err := statefile.WriteJSON(s.claimPath(c.Namespace, c.ID), c); err != nil {
		return err
	}
	if _, legacy := s.legacyClaim(c.Namespace, c.ID); legacy != "" {
		return statefile.Remove(legacy)
	}
	return nil
}

// LoadClaim returns nil, nil when the container holds nothing.
func (s State) LoadClaim(ns, id string) (*Claim, error) {
	var c Claim
	ok, err := statefile.ReadJSON(s.claimPath(ns, id), &c)
	if !ok && err == nil {
		legacy, _ := s.legacyClaim(ns, id)
		return legacy, nil
	}
	if !ok {
		return nil, err
	}
	return &c, err
}

// DeleteClaim removes ns/id's claim record, a legacy one included.
func (s State) DeleteClaim(ns, id string) error {
	if _, legacy := s.legacyClaim(ns, id); legacy != "" {
		if err := statefile.Remove(legacy); err != nil {
			return err
		}
	}
	return statefile.Remove(s.claimPath(ns, id))
}

// CorruptError reports claim records that cannot be read. They are kept, never dropped: what
// they hold is unknown (a pod's quota, a budget), so nothing they might stand for is given
// back until an operator looks (rtshim status lists them).
type CorruptError struct {
	Records []string // paths
	Errs    []error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%d corrupt rtshim claim record(s), kept for an operator to inspect: %v", len(e.Records), errors.Join(e.Errs...))
}

// Claims lists every claim on the host. Records it cannot read are reported in a
// *CorruptError, returned with the claims it could read.
func (s State) Claims() ([]*Claim, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "claims"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Claim
	var corrupt CorruptError
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.Dir, "claims", e.Name())
		var c Claim
		ok, err := statefile.ReadJSON(p, &c)
		switch {
		case err != nil:
			corrupt.Records, corrupt.Errs = append(corrupt.Records, p), append(corrupt.Errs, err)
		case ok:
			out = append(out, &c)
		}
	}
	if len(corrupt.Records) > 0 {
		return out, &corrupt
	}
	return out, nil
}

// RecordBaseline keeps the first value rtshim saw; later calls do not overwrite it.
func (s State) RecordBaseline(cgroup, file, value string) error {
	p := s.baselinePath(cgroup, file)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return statefile.WriteJSON(p, &Baseline{Cgroup: cgroup, File: file, Value: value})
}

// UpdateBaseline replaces the value to restore: what the kubelet set while rtshim held the
// file lifted is what it wants back.
func (s State) UpdateBaseline(cgroup, file, value string) error {
	return statefile.WriteJSON(s.baselinePath(cgroup, file), &Baseline{Cgroup: cgroup, File: file, Value: value})
}

// LoadBaseline returns "", false when rtshim has not changed that file.
func (s State) LoadBaseline(cgroup, file string) (string, bool, error) {
	var b Baseline
	ok, err := statefile.ReadJSON(s.baselinePath(cgroup, file), &b)
	return b.Value, ok && err == nil, err
}

func (s State) DeleteBaseline(cgroup, file string) error {
	return statefile.Remove(s.baselinePath(cgroup, file))
}

// ProcessStartTime reads field 22 of /proc/<pid>/stat below procRoot; 0 if the process is gone.
func ProcessStartTime(procRoot string, pid int) uint64 {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses: count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(fields[19], 10, 64)
	return v
}

// OwnerOf identifies process pid (below procRoot) as a claim's owner.
func OwnerOf(procRoot string, pid int) Owner {
	return Owner{PID: pid, StartTime: ProcessStartTime(procRoot, pid)}
}

// Alive reports whether the owner still runs. An owner without a start time is not: a grant
// refuses to record one (see Grant), and ProcessStartTime's 0 for a gone process must not match.
func (o Owner) Alive(procRoot string) bool {
	return o.PID > 0 && o.StartTime != 0 && ProcessStartTime(procRoot, o.PID) == o.StartTime
}
