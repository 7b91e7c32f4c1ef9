// Package failpoint lets the crash-safety tests kill the shim, or make a step fail, at named
// steps between "budget granted" and "container started" and during delete. It is compiled in
// only with the build tag "failpoints" (the test build of the shim, `make build-fp`); in the
// production binary Hit does nothing.
//
// A container arms a step with the annotation failpoint.rtshim.io/<step>=<action>, where
// action is "kill" (SIGKILL the shim, as a crash would) or "error" (the step fails).
package failpoint

// AnnotationPrefix starts the annotations that arm a step. It lies outside "rtshim.io/", so
// the production shim's annotation parser does not read it.
const AnnotationPrefix = "failpoint.rtshim.io/"

// Steps, in the order a container meets them.
const (
	GrantClaimed   = "grant-claimed"   // claim recorded, nothing written yet
	GrantAncestors = "grant-ancestors" // ancestors raised, container cgroup not yet created
	CreateGranted  = "create-granted"  // budget granted, spec written, runc create not run
	CreateCreated  = "create-created"  // runc create done, policy not yet applied
	CreateApplied  = "create-applied"  // policy applied, Create not yet answered
	StartBefore    = "start-before"    // Start received, runc start not run
	DeleteBefore   = "delete-before"   // Delete received, runc delete not run
	DeleteDeleted  = "delete-deleted"  // runc delete done, budget not yet given back
)

// Steps lists every step.
var Steps = []string{GrantClaimed, GrantAncestors, CreateGranted, CreateCreated, CreateApplied,
	StartBefore, DeleteBefore, DeleteDeleted}
