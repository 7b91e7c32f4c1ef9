//go:build !failpoints

package failpoint

// Enabled: failpoints are compiled in.
const Enabled = false

// Hook returns nil in production builds: no step has a hook.
func Hook(map[string]string) func(step string) error { return nil }
