//go:build !failpoints

package failpoint

// Enabled reports whether this binary was built with failpoints.
const Enabled = false

// Hit does nothing in production builds.
func Hit(map[string]string, string) error { return nil }
