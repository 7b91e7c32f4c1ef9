package wrapper

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/config"
	"github.com/rtshim/rtshim/rtcontainer"
)

// update keeps a real-time container's quota exemption and budget across `runc update`, as the
// shim's Update does: a new CFS quota becomes unlimited, and RT budget changes are dropped (the
// budgets along the whole cgroup path are rtshim's). Both forms are rewritten: flags
// (--cpu-quota, --cpu-rt-runtime, --cpu-rt-period) and --resources FILE|- (the JSON form that
// containerd's shim, and so Docker, uses).
func (w Wrapper) update(inv Invocation, cfg *config.Config, runc string) int {
	ctx := context.Background()
	c, err := w.Host.Lookup(ctx, w.options(inv, cfg, runc))
	if err != nil {
		return w.fail(err)
	}
	if c == nil {
		return w.handOver(runc, inv.Args)
	}
	args, cleanup, err := rewriteUpdate(inv.Args, c, os.Stdin)
	defer cleanup()
	if err != nil {
		return w.fail(err)
	}
	return runReal(runc, args, 0)
}

// rewriteUpdate returns the update command line with what would undo c's exemptions changed.
// A --resources document is rewritten into a temporary file, which cleanup removes.
func rewriteUpdate(args []string, c *rtcontainer.Container, stdin io.Reader) (out []string, cleanup func(), err error) {
	cleanup = func() {}
	exempt, budget := c.Req.ExemptQuota(), c.Req.NeedsBudget()
	afterCommand := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !afterCommand {
			out = append(out, a)
			afterCommand = a == "update"
			continue
		}
		name, value, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			out = append(out, args[i:]...)
			break
		}
		takesValue := map[string]bool{"cpu-quota": true, "cpu-rt-runtime": true, "cpu-rt-period": true, "resources": true, "r": true}[name]
		if takesValue && !inline && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch {
		case name == "cpu-quota" && exempt:
			out = append(out, "--cpu-quota=-1")
		case (name == "cpu-rt-runtime" || name == "cpu-rt-period") && budget:
			// dropped: rtshim owns the budgets
		case name == "resources" || name == "r":
			p, done, err := rewriteResources(value, c, stdin)
			cleanup = done
			if err != nil {
				return nil, cleanup, err
			}
			out = append(out, "--resources="+p)
		case takesValue:
			out = append(out, "--"+name+"="+value)
		default:
			out = append(out, a)
		}
	}
	return out, cleanup, nil
}

// rewriteResources reads a runc update --resources document (a file, or "-" for stdin),
// applies the container's Update step to it and writes it to a temporary file.
func rewriteResources(src string, c *rtcontainer.Container, stdin io.Reader) (string, func(), error) {
	noop := func() {}
	var b []byte
	var err error
	if src == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(src)
	}
	if err != nil {
		return "", noop, fmt.Errorf("read update resources %s: %w", src, err)
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(b, &res); err != nil {
		return "", noop, fmt.Errorf("%w: update resources %s: %w", errdefs.ErrInvalidArgument, src, err)
	}
	c.Update(&res)
	out, err := json.Marshal(&res)
	if err != nil {
		return "", noop, err
	}
	f, err := os.CreateTemp("", "runc-rt-update-*.json")
	if err != nil {
		return "", noop, err
	}
	done := func() { os.Remove(f.Name()) }
	_, err = f.Write(out)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", done, err
	}
	return f.Name(), done, nil
}
