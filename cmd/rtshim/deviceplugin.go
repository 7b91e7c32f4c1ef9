package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/containerd/log"

	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/internal/deviceplugin"
	"github.com/rtshim/rtshim/internal/doctor"
	"github.com/rtshim/rtshim/internal/sched"
	"github.com/rtshim/rtshim/rtcontainer"
)

const helpDevicePlugin = `    device-plugin [--dir DIR] [--kubepods CGROUP] [--interval DURATION] [--config FILE]
        Run the kubelet device plugin that makes the node's RT bandwidth the extended
        resource rtshim.io/rt-bandwidth (1 unit = 1 ms of RT runtime per second; a pod
        asks resources.limits {rtshim.io/rt-bandwidth: 100} for 100 ms/s). The node's
        allocatable is what the shim would admit for pods (the RT budget left below
        the kubelet's --cgroup-root, read again every --interval, default 2s) plus
        what allocated containers hold; an allocation becomes the container's budget.
        --dir is the kubelet's device plugin directory (default
        /var/lib/kubelet/device-plugins), --kubepods its cgroup root (default
        /kubepods, the cgroupfs driver's). Runs until SIGTERM or SIGINT; see
        docs/kubernetes.md.

`

func (a *app) devicePlugin(args []string) int {
	f := a.newFlags("device-plugin", helpDevicePlugin)
	dir := f.String("dir", "/var/lib/kubelet/device-plugins", "the kubelet's device plugin directory")
	kubepods := f.String("kubepods", "/kubepods", "the kubelet's cgroup root")
	interval := f.Duration("interval", 2*time.Second, "how often to read the node's RT bandwidth")
	if err := f.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, f.help)
		return exitOK
	} else if err != nil || f.NArg() > 0 || *interval <= 0 {
		fmt.Fprintf(a.stderr, "see 'rtshim device-plugin --help'\n")
		return exitUsage
	}
	cfg, err := doctor.ShimConfig(a.hostFor(f))
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim device-plugin: rtshim config: %v\n", err)
		return exitNotReady
	}
	cg, err := rtcontainer.Host{ProcRoot: a.host.ProcRoot}.Cgroups(cfg.StateDir)
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim device-plugin: %v\n", err)
		return exitNotReady
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// cgroup v1 with RT group scheduling has RT budgets to count; elsewhere (cgroup v2) the
	// kernel's SCHED_DEADLINE admission is the bandwidth that can run out.
	// The smallest budget the shim grants is one tick of this kernel: the same as the shim's.
	rules := cfg.Rules()
	rules.Limits.TickUS, _ = cgroupfix.TickUS(a.host.ProcRoot, a.host.BootDir)
	var src deviceplugin.Source = deviceplugin.RTBudget{Cgroups: cg, Kubepods: *kubepods, Rules: rules}
	if !cg.RTGroupSched() {
		src = deviceplugin.Deadline{Procs: sched.Procs{Root: a.host.ProcRoot}, SysRoot: a.host.SysRoot, Cgroups: cg}
	}
	n, detail, err := src.Units()
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim device-plugin: %s: %v\n", src.Resource(), err)
		return exitNotReady
	}
	log.G(ctx).WithField("resource", src.Resource()).WithField("units", n).WithField("detail", detail).Info("rtshim device plugin starting")
	p := &deviceplugin.Plugin{Source: src, Interval: *interval}
	if err := p.Serve(ctx, *dir); err != nil {
		fmt.Fprintf(a.stderr, "rtshim device-plugin: %v\n", err)
		return exitNotReady
	}
	return exitOK
}
