package shim

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/rtshim/rtshim/oci"
)

// schedulerSupport is whether a runtime applies process.scheduler, with its version line.
type schedulerSupport struct {
	ok      bool
	version string
}

// appliesScheduler reports whether binary applies process.scheduler: runc ≥ 1.2, which
// implements runtime-spec ≥ 1.1 (runc 1.1 reports "spec: 1.0.2-dev" and ignores it). The
// answer is kept per binary for the shim's lifetime.
func (s *Service) appliesScheduler(ctx context.Context, binary string) schedulerSupport {
	if v, ok := s.schedSupport.Load(binary); ok {
		return v.(schedulerSupport)
	}
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	sup := schedulerSupport{version: strings.TrimSpace(string(out))}
	if err != nil {
		log.G(ctx).WithError(err).WithField("runtime", binary).Warn("read runtime version")
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "spec: "); ok {
			sup.ok = specAtLeast(v, 1, 1)
		}
	}
	s.schedSupport.Store(binary, sup)
	return sup
}

// specAtLeast compares a runtime-spec version ("1.0.2-dev", "1.2.1") with major.minor.
func specAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

// checkExecPolicy refuses an exec whose policy the runtime cannot apply. An exec'd process is
// started by `runc exec` and may finish before the shim could set anything afterwards, so
// with a runtime that ignores the exec spec's scheduler a real-time exec policy would silently
// not hold. The default exec policy, SCHED_OTHER, always holds: runc exec runs SCHED_OTHER.
func (s *Service) checkExecPolicy(ctx context.Context, c *rtContainer) error {
	if c.Req.Exec == (oci.Sched{Policy: oci.PolicyOther}) {
		return nil
	}
	if sup := s.appliesScheduler(ctx, c.runtime); !sup.ok {
		return fmt.Errorf("%w: %s=%s needs a runtime that applies process.scheduler (runc 1.2 or newer); %s reports %q",
			errdefs.ErrFailedPrecondition, oci.KeyExecPolicy, c.Req.Exec.Policy, c.runtime, firstLine(sup.version))
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
