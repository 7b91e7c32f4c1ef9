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
}

// NeedsBudget reports whether the container needs an RT budget and the quota rules.
func (r *Request) NeedsBudget() bool { return r != nil && r.Sched.Policy.RealTime() }

// ExemptQuota reports whether the container's CFS quota must be lifted.
func (r *Request) ExemptQuota() bool { return r.NeedsBudget() && r.CPUQuota == QuotaDisable }
