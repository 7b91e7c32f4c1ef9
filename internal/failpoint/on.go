//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Enabled is true in the failpoints build.
const Enabled = true

// Hook returns the hook that carries out, before each step, the action annotations arm for it.
func Hook(annotations map[string]string) func(step string) error {
	return func(step string) error {
		action := annotations[AnnotationPrefix+step]
		marker, once := strings.CutPrefix(action, "kill-once:")
		switch {
		case action == "":
			return nil
		case action == "kill":
			kill()
		case once:
			f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil // killed once already (or no marker can be made: then no kill at all)
			}
			f.Close()
			kill()
		case action == "error":
			return fmt.Errorf("failpoint %s: injected failure", step)
		}
		return fmt.Errorf("failpoint %s: unknown action %q (want kill, kill-once:<file> or error)", step, action)
	}
}

// kill SIGKILLs this process, as a crash would; it never returns.
func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
