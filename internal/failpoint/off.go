//go:build !failpoints

package failpoint

// Enabled is false in production builds: nothing needs the annotations that arm a step.
const Enabled = false

// Hook returns nil in production builds: no step has a hook.
func Hook(map[string]string) func(step string) error { return nil }
