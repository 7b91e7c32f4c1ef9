// Package oci turns what a container asks for (rtshim.io/ annotations, RTSHIM_ environment
// variables, an existing process.scheduler) and what the operator allows (the host config)
// into one validated Request, and applies it to an OCI spec with small pure functions.
package oci

import "time"

// Policy is a Linux scheduling policy, named as in sched(7) ("SCHED_FIFO").
type Policy string

const (
	PolicyOther    Policy = "SCHED_OTHER"
	PolicyFIFO     Policy = "SCHED_FIFO"
	PolicyRR       Policy = "SCHED_RR"
	PolicyBatch    Policy = "SCHED_BATCH"
	PolicyIdle     Policy = "SCHED_IDLE"
	PolicyDeadline Policy = "SCHED_DEADLINE"
)

// Policies lists every policy rtshim understands, in the order error messages show them.
var Policies = []Policy{PolicyFIFO, PolicyRR, PolicyOther, PolicyBatch, PolicyIdle, PolicyDeadline}

// RealTime reports whether p is one of the kernel's real-time classes, the ones that need
// CAP_SYS_NICE, an RT budget on cgroup v1 and the CFS quota exemption.
func (p Policy) RealTime() bool {
	return p == PolicyFIFO || p == PolicyRR || p == PolicyDeadline
}

// Mode says who switches the container's process to its policy.
type Mode string

const (
	// ModeApply: the runtime applies the policy before the program's first instruction.
	ModeApply Mode = "apply"
	// ModeGrant: the program starts unchanged, with CAP_SYS_NICE and a budget to switch itself.
	ModeGrant Mode = "grant"
)

// QuotaMode says what happens to the container's CFS quota.
type QuotaMode string

const (
	QuotaDisable QuotaMode = "disable"
	QuotaKeep    QuotaMode = "keep"
)

// Deadline holds SCHED_DEADLINE parameters.
type Deadline struct {
	Runtime, Deadline, Period time.Duration
}

// Sched is one scheduling setting: the policy with its parameters.
type Sched struct {
	Policy      Policy
	Priority    int // 1–99 for FIFO/RR, 0 otherwise
	Nice        int // -20–19 for OTHER/BATCH
	ResetOnFork bool
	Deadline    *Deadline // set only for SCHED_DEADLINE
}

// Request is the validated real-time request of one container. A nil *Request means the
// container asked for nothing and is passed through untouched.
type Request struct {
	Sched Sched
	Mode  Mode
	// RTRuntimeUS/RTPeriodUS: the cgroup v1 RT budget per period, in microseconds. Zero
	// runtime when the policy is not real-time.
	RTRuntimeUS int64
	RTPeriodUS  int64
	CPUQuota    QuotaMode
	// Exec is the policy of processes exec'd into the container.
	Exec Sched
	// Grant is what a grant-mode container's program may do itself.
	Grant Grant `json:",omitempty"`
	// FromSpec: the policy is the spec's own process.scheduler, not an rtshim.io/ request.
	FromSpec bool `json:",omitempty"`
	// BudgetOnly: the container asked for an RT budget only (the spec's realtimeRuntime, e.g.
	// docker run --cpu-rt-runtime), no policy: its program switches itself, with whatever
	// capabilities its engine gave it. Mode is grant then, granting nothing but the budget.
	BudgetOnly bool `json:",omitempty"`
	// AllocatedUS is the budget, per RTPeriodUS, the container's rtshim.io/rt-bandwidth
	// allocation gave it (0: none); RTRuntimeUS equals it then.
	AllocatedUS int64 `json:",omitempty"`
	// Tuning is the container's host tuning (exclusive CPUs, IRQs, C-states, governor); nil: none.
	Tuning *Tuning `json:",omitempty"`
	// TuningSkipped says why CRI-O's tuning annotations were not applied to this container (it
	// does not own whole CPUs, which CRI-O skips too).
	TuningSkipped string `json:",omitempty"`
	// ExemptAlways: CRI-O's cpu-quota.crio.io asked for the quota exemption, which CRI-O gives
	// whatever the container's policy.
	ExemptAlways bool `json:",omitempty"`
}

// SpecError is a refusal of the spec's own process.scheduler (set by the engine, NRI or by
// hand) rather than of an rtshim.io/ request: a drop-in runc (runc-rt) leaves such a spec to
// runc, whose own validation and error message then apply.
type SpecError struct{ Err error }

func (e *SpecError) Error() string { return e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

// Grant bounds a program that switches its own policy (grant mode). With CapSysNice it may do
// anything the kernel allows CAP_SYS_NICE (only when the limits allow all of it); otherwise it
// runs without CAP_SYS_NICE and with RLIMIT_RTPRIO = RTPrio, which lets an unprivileged
// program choose SCHED_FIFO or SCHED_RR up to that priority and nothing else real-time
// (SCHED_DEADLINE and negative nice values need CAP_SYS_NICE).
type Grant struct {
	CapSysNice bool `json:",omitempty"`
	RTPrio     int  `json:",omitempty"`
}

// NeedsBudget reports whether the container needs an RT budget and the quota rules.
func (r *Request) NeedsBudget() bool { return r != nil && (r.Sched.Policy.RealTime() || r.BudgetOnly) }

// ExemptQuota reports whether the container's CFS quota must be lifted.
func (r *Request) ExemptQuota() bool {
	return (r.NeedsBudget() || r != nil && r.ExemptAlways) && r.CPUQuota == QuotaDisable
}
