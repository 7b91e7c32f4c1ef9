//go:build !failpoints

package failpoint

// Hook returns nil in production builds: no step has a hook.
func Hook(map[string]string) func(step string) error { return nil }
