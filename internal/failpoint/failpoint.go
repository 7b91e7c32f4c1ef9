// Package failpoint lets the crash-safety tests kill the shim, or make a step fail, at the
// named steps of a container's lifecycle (rtcontainer.Step*, cgroupfix.StepGrant*). It is
// compiled in only with the build tag "failpoints" (the test build of the shim, `make
// build-fp`); in the production binary Hook returns nil and no step has a hook.
//
// A container arms a step with the annotation failpoint.rtshim.io/<step>=<action>, where
// action is "kill" (SIGKILL the shim, as a crash would), "error" (the step fails) or
// "kill-once:<file>" (kill, unless <file> exists; it is created first): runc-rt reads the
// annotations again in every command, and an engine's retry of the same command must be able
// to finish.
package failpoint

// AnnotationPrefix starts the annotations that arm a step. It lies outside "rtshim.io/", so
// the production shim's annotation parser does not read it.
const AnnotationPrefix = "failpoint.rtshim.io/"
