package rtcontainer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/rtshim/rtshim/oci"
)

// capSysResource is CAP_SYS_RESOURCE's bit (linux/capability.h).
const capSysResource = 24

// canRaiseRTPrio checks that runc, which this process starts, can give a granted container
// RLIMIT_RTPRIO = n: runc init sets the container's rlimits with this process's privileges, and
// raising a hard limit needs CAP_SYS_RESOURCE. Refusing here names the reason; runc would fail
// with a bare "operation not permitted".
func (h Host) canRaiseRTPrio(n int) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &rl); err == nil && rl.Max >= uint64(n) {
		return nil
	}
	if h.effectiveCap(capSysResource) {
		return nil
	}
	return fmt.Errorf("%w: %s=%s: a granted program is bounded by RLIMIT_RTPRIO=%d here (the limits allow less than "+
		"CAP_SYS_NICE would), but the runtime cannot raise that limit: it lacks CAP_SYS_RESOURCE and its hard RLIMIT_RTPRIO "+
		"is %d; run containerd (or the engine) with CAP_SYS_RESOURCE, or use %s=%s",
		errdefs.ErrFailedPrecondition, oci.KeyMode, oci.ModeGrant, n, rl.Max, oci.KeyMode, oci.ModeApply)
}

// effectiveCap reports whether this process has capability bit in its effective set
// (CapEff in /proc/self/status).
func (h Host) effectiveCap(bit uint) bool {
	f, err := os.Open(filepath.Join(h.ProcRoot, "self", "status"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}
