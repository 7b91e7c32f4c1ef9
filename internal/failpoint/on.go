//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

// Hit carries out the action armed for step in annotations, if any.
func Hit(annotations map[string]string, step string) error {
	switch action := annotations[AnnotationPrefix+step]; action {
	case "":
		return nil
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal is on its way
	case "error":
		return fmt.Errorf("failpoint %s: injected failure", step)
	default:
		return fmt.Errorf("failpoint %s: unknown action %q (want kill or error)", step, action)
	}
}
