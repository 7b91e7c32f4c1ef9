package rtcontainer

import (
	"context"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/log"

	"github.com/rtshim/rtshim/cgroupfix"
)

// BeforeKill is the step before a signal reaches the container: before SIGKILL, every
// real-time thread in its cgroup becomes SCHED_OTHER. A busy real-time thread that overran a
// small budget stays throttled, SIGKILL pending, until it has repaid the overrun a budget per
// period (minutes for a budget of a few µs); as SCHED_OTHER it runs, and dies, at once. Other
// signals pass unchanged: a program that handles SIGTERM does so with its policy, and the
// engine's SIGKILL after its stop timeout still lands.
func (c *Container) BeforeKill(ctx context.Context, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		c.host.Demote(ctx, c.stateDir, c.Namespace, c.ID)
	}
}

// Demote makes every real-time thread of container ns/id SCHED_OTHER (see BeforeKill), for the
// front doors that kill a container without its Container at hand: `containerd-shim-rt-v2
// delete` after a shim died, runc-rt's kill and delete --force. Best effort: what fails is
// logged.
func (h Host) Demote(ctx context.Context, stateDir, ns, id string) {
	claim, err := cgroupfix.State{Dir: stateDir}.LoadClaim(ns, id)
	if err != nil || claim == nil {
		return // not a real-time container: no need to find the cpu hierarchy
	}
	cg, err := h.cgroups(stateDir)
	if err != nil {
		return
	}
	procs, err := cg.CPU.ReadFile(claim.Leaf, "cgroup.procs")
	if err != nil {
		return
	}
	demoted := 0
	for _, f := range strings.Fields(procs) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		n, err := h.procs().Demote(pid)
		demoted += n
		if err != nil {
			log.G(ctx).WithError(err).WithField("id", id).Warn("demote real-time threads before SIGKILL")
		}
	}
	if demoted > 0 {
		log.G(ctx).WithField("id", id).WithField("threads", demoted).Info("demoted real-time threads to SCHED_OTHER before SIGKILL")
	}
}
