package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/rtshim/rtshim/internal/doctor"
	"github.com/rtshim/rtshim/internal/status"
	"github.com/rtshim/rtshim/internal/version"
)

// Exit statuses (documented in the help page).
const (
	exitOK       = 0
	exitNotReady = 1 // doctor: a finding failed; status: could not read
	exitUsage    = 2
)

// textWidth is where doctor wraps what it saw and why; fixes are never wrapped.
const textWidth = 100

// app is the CLI with its outputs and host injected, so tests run it against fake trees.
type app struct {
	stdout, stderr io.Writer
	host           doctor.Host
	sched          func(pid int) (status.Sched, error) // nil: sched_getattr
	version        version.Info
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, host: doctor.DefaultHost(), version: version.Get()}
}

func (a *app) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, "usage: rtshim doctor|status|reap|device-plugin|help|version [options]; rtshim --help for the manual\n")
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "doctor":
		return a.doctor(rest)
	case "status":
		return a.status(rest)
	case "reap":
		return a.reap(rest)
	case "device-plugin":
		return a.devicePlugin(rest)
	case "help", "-h", "-help", "--help":
		return a.help(rest)
	case "version", "-v", "-version", "--version":
		if len(rest) > 0 {
			fmt.Fprintf(a.stderr, "rtshim %s: unexpected argument %q\n", cmd, rest[0])
			return exitUsage
		}
		fmt.Fprint(a.stdout, a.version.Text("rtshim"))
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "rtshim: unknown command %q; commands are doctor, status, reap, device-plugin, help, version\n", cmd)
		return exitUsage
	}
}

func (a *app) help(args []string) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(a.stdout, helpPage)
	case args[0] == "doctor":
		fmt.Fprint(a.stdout, "Usage: rtshim doctor [options]\n\n"+helpDoctor+helpExit)
	case args[0] == "status":
		fmt.Fprint(a.stdout, "Usage: rtshim status [options]\n\n"+helpStatus+helpExit)
	case args[0] == "device-plugin":
		fmt.Fprint(a.stdout, "Usage: rtshim device-plugin [options]\n\n"+helpDevicePlugin+helpExit)
	case args[0] == "reap":
		fmt.Fprint(a.stdout, "Usage: rtshim reap NAMESPACE ID [options]\n\n"+helpReap+helpExit)
	default:
		fmt.Fprintf(a.stderr, "rtshim help: unknown command %q; commands are doctor, status\n", args[0])
		return exitUsage
	}
	return exitOK
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// flags is what both commands accept; each adds its own.
type flags struct {
	*flag.FlagSet
	json       bool
	config     string
	containerd listFlag
	address    string
	help       string
	stdout     io.Writer
}

func (a *app) newFlags(name, help string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("rtshim "+name, flag.ContinueOnError), stdout: a.stdout}
	f.SetOutput(a.stderr)
	// flag calls Usage for -help and for errors: -help is handled in parse (the page goes to
	// stdout); after an error a pointer to it is enough.
	f.Usage = func() {}
	f.help = "Usage: rtshim " + name + " [options]\n\n" + help + helpExit
	f.BoolVar(&f.json, "json", false, "print JSON")
	f.StringVar(&f.config, "config", "", "rtshim config file")
	f.Var(&f.containerd, "containerd-config", "containerd config file (repeatable)")
	f.StringVar(&f.address, "address", "", "the containerd socket to check (default: every running containerd)")
	return f
}

// parse returns the exit status to stop with, or -1 to go on. --help is a success.
func (f *flags) parse(args []string) int {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(f.stdout, f.help)
		return exitOK
	case err != nil:
		fmt.Fprintf(f.Output(), "see '%s --help'\n", f.Name())
		return exitUsage
	case f.NArg() > 0:
		fmt.Fprintf(f.Output(), "%s: unexpected argument %q\n", f.Name(), f.Arg(0))
		return exitUsage
	}
	return -1
}

func (a *app) hostFor(f *flags) doctor.Host {
	h := a.host
	h.ShimConfig = f.config
	h.Address = f.address
	if abs, err := filepath.Abs(f.address); err == nil && f.address != "" {
		h.Address = abs
	}
	h.ContainerdConfigs = append(append([]string{}, h.ContainerdConfigs...), f.containerd...)
	return h
}

func (a *app) doctor(args []string) int {
	f := a.newFlags("doctor", helpDoctor)
	if code := f.parse(args); code >= 0 {
		return code
	}
	r := doctor.Run(a.hostFor(f))
	var err error
	if f.json {
		err = r.WriteJSON(a.stdout)
	} else {
		err = r.WriteText(a.stdout, textWidth)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim doctor: %v\n", err)
		return exitNotReady
	}
	if !r.Ready {
		return exitNotReady
	}
	return exitOK
}

func (a *app) status(args []string) int {
	f := a.newFlags("status", helpStatus)
	stateDir := f.String("state-dir", "", "state dir holding the claims")
	if code := f.parse(args); code >= 0 {
		return code
	}
	h := a.hostFor(f)
	named := *stateDir != ""
	if !named {
		cfg, err := doctor.ShimConfig(h)
		if err != nil {
			fmt.Fprintf(a.stderr, "rtshim status: rtshim config: %v\n(pass --state-dir to read the claims anyway)\n", err)
			return exitNotReady
		}
		*stateDir = cfg.StateDir
	}
	r, err := status.List(status.Host{ProcRoot: h.ProcRoot, StateDir: *stateDir, StateDirNamed: named, Sched: a.sched})
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim status: %v\n", err)
		return exitNotReady
	}
	if f.json {
		err = r.WriteJSON(a.stdout)
	} else {
		err = r.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "rtshim status: %v\n", err)
		return exitNotReady
	}
	return exitOK
}
