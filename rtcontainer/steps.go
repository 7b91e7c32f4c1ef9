package rtcontainer

import "github.com/rtshim/rtshim/cgroupfix"

// The steps of a container's lifecycle at which the crash-safety tests' hook runs (see
// internal/failpoint), in the order a container meets them.
const (
	StepCreateGranted = "create-granted" // budget granted, spec written, runc create not run
	StepCreateCreated = "create-created" // runc create done, policy not yet applied
	StepCreateApplied = "create-applied" // policy applied, Create not yet answered
	StepStartBefore   = "start-before"   // Start received, runc start not run
	StepDeleteBefore  = "delete-before"  // Delete received, runc delete not run
	StepDeleteDeleted = "delete-deleted" // runc delete done, budget not yet given back
)

// StepCleanupBefore is the step of `containerd-shim-rt-v2 delete` (containerd's cleanup after a
// shim died) before it kills the container: a kill there leaves the container orphaned (see
// rtshim reap). It is not in Steps: a container meets it only when its shim died.
const StepCleanupBefore = "cleanup-before"

// Steps lists every step, the grant's own included.
var Steps = []string{cgroupfix.StepGrantClaimed, cgroupfix.StepGrantAncestors, StepCreateGranted,
	StepCreateCreated, StepCreateApplied, StepStartBefore, StepDeleteBefore, StepDeleteDeleted}

// step runs f as the named step: the hook runs first, and its error fails the step.
func (c *Container) step(name string, f func() error) error {
	if c.hook != nil {
		if err := c.hook(name); err != nil {
			return err
		}
	}
	return f()
}
