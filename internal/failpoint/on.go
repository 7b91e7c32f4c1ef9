//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Enabled: failpoints are compiled in.
const Enabled = true

// Hook returns the hook that carries out, before each step, the action annotations arm for it.
func Hook(annotations map[string]string) func(step string) error {
	return func(step string) error {
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
}
